using LambdaPlatform.Chaos;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>Runs a scenario at CI size (seed printed) and asserts nothing was lost or double counted.</summary>
internal static class ChaosAssert
{
    public static async Task<FaultResult> RunCleanAsync(IChaosScenario scenario, ITestOutputHelper output, Func<ChaosSettings, ChaosSettings>? adjust = null)
    {
        var settings = ChaosSettings.Ci(SeedFromEnvironment());
        settings = adjust?.Invoke(settings) ?? settings;
        using var log = new TestOutputWriter(output);
        log.WriteLine($"seed {settings.Seed} (set LAMBDA_CHAOS_SEED to repeat)");
        try
        {
            var result = await scenario.RunAsync(settings, log, CancellationToken.None);
            foreach (var note in result.Notes)
            {
                log.WriteLine(note);
            }

            log.WriteLine($"{result.Fault}: injected {result.Injected}, events in {result.EventsIn}, in merged view {result.EventsInMergedView}, lost {result.Lost}, duplicated {result.Duplicated}, cells compared {result.CellsCompared}, wrong {result.CellsWrong}, kills on work in flight {result.KillsOnWorkInFlight}, dead-lettered {result.DeadLettered}");
            if (result.Error is not null)
            {
                log.WriteLine("ERROR: " + result.Error);
            }

            Assert.Null(result.Error);
            Assert.True(result.Injected > 0, "the fault was never injected");
            Assert.True(result.EventsIn > 0, "no events went in");
            Assert.Equal(0, result.Lost);
            Assert.Equal(0, result.Duplicated);
            Assert.Equal(result.EventsIn, result.EventsInMergedView);
            Assert.Equal(0, result.CellsWrong ?? 0);
            Assert.True(result.Clean);
            return result;
        }
        finally
        {
            try
            {
                Directory.Delete(settings.WorkDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static int? SeedFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("LAMBDA_CHAOS_SEED"), out var seed) ? seed : null;

    private sealed class TestOutputWriter(ITestOutputHelper output) : StringWriter(System.Globalization.CultureInfo.InvariantCulture)
    {
        public override void WriteLine(string? value) => output.WriteLine(value ?? string.Empty);
    }
}
