using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>Faults of a deployment with <c>lambda serve</c>: its scheduler's PostgreSQL stopped, the speed layer down while the API is under load.</summary>
public sealed class ServeFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task PostgresStopped_JobsResumeAndNoneRunsTwice_AndTheMergedViewsAreExact()
    {
        var result = await ChaosAssert.RunCleanAsync(new PostgresOutageScenario(), output);

        Assert.True(result.Figures["jobsInFlightAtStop"] >= 1, "no recompute was in flight when PostgreSQL stopped");
        Assert.Equal(0, result.Figures["jobsRunTwice"]);
        Assert.Equal(0, result.Figures["jobsUnfinished"]);
        Assert.Equal(0, result.Figures["serveRestarts"]);
        Assert.True(result.CellsCompared > 0);
    }

    [Fact]
    public async Task SpeedLayerDownUnderLoad_EveryAnswerSucceedsFlaggedStale_AndTheMergedViewsAreExact()
    {
        var result = await ChaosAssert.RunCleanAsync(new SpeedDownUnderLoadScenario(), output);

        Assert.Equal(0, result.Figures["requestsFailed"]);
        Assert.True(result.Figures["requestsServedWhileDown"] >= 10 * 50 * 0.9, $"only {result.Figures["requestsServedWhileDown"]} requests answered while the speed layer was down");
        Assert.True(result.Figures["speedLagMaxWhileDownSeconds"] >= 10, "speedLagSeconds did not say the answers were stale");
        Assert.True(result.Figures["speedLagRecoveredAfterSeconds"] >= 0, "speedLagSeconds did not fall back after the restart");
        Assert.True(result.Figures["latencyP99Ms"] > 0);
        Assert.True(result.CellsCompared > 0);
    }
}
