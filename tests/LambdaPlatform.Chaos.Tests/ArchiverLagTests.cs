using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

public sealed class ArchiverLagTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ArchiverKilledMidDay_LosesNoServedEvent_BeforeDuringAndAfterABatchRun_AndTheNextRunIsExact()
    {
        var result = await ChaosAssert.RunCleanAsync(new ArchiverLagScenario(), output);
        Assert.Equal(1, result.Injected); // the SIGKILL landed (exit 137)
        Assert.True(result.CellsCompared > 0);
    }
}
