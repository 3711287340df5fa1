using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

public sealed class KillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task KillNine_LosesAndDuplicatesNothing_WhenSpeedArchiverAndBatchAreKilledOnWorkInFlight()
    {
        var scenario = new KillScenario();
        var result = await ChaosAssert.RunCleanAsync(scenario, output);

        Assert.True(result.KillsOnWorkInFlight >= 10, $"only {result.KillsOnWorkInFlight} kills landed on work in flight");
        Assert.True(result.Injected >= 10, $"only {result.Injected} kills");
        Assert.True(result.CellsCompared > 0);
        foreach (var victim in KillScenario.Victims)
        {
            Assert.True(scenario.LastKills!.Kills.Count(k => k.Victim == victim && k.OnWorkInFlight) >= 2, $"{victim} was not killed on work in flight twice");
        }

        Assert.All(scenario.LastKills!.Kills.Where(k => k.Victim != "batch" && k.OnWorkInFlight), k => Assert.NotEmpty(k.Work.Partitions));
    }
}
