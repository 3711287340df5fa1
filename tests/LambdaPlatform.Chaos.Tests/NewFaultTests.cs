using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>Faults a real deployment meets that the suite lacked: ClickHouse killed under a batch load, skewed producer clocks.</summary>
public sealed class NewFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ClickHouseKilledDuringBatchLoad_LosesNothing_AndEveryCellIsExactAfterEachRestart()
    {
        var result = await ChaosAssert.RunCleanAsync(new ClickHouseBatchKillScenario(), output);

        Assert.True(result.Injected >= 2, $"only {result.Injected} server kills landed mid-load");
        Assert.True(result.CellsCompared > 0);
    }

    [Fact]
    public async Task SkewedProducerClocks_LoseNothing_AndEventsTooFarAheadAreDeadLetteredWithTheirReason()
    {
        var result = await ChaosAssert.RunCleanAsync(new ClockSkewScenario(), output);

        Assert.True(result.DeadLettered > 0, "no event was refused: the 2-hours-ahead producer sent nothing");
        Assert.True(result.CellsCompared > 0);
    }
}
