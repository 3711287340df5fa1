using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

public sealed class KillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task KillNine_LosesAndDuplicatesNothing_WhenSpeedArchiverAndBatchAreKilledWhileEventsFlow()
    {
        var result = await ChaosAssert.RunCleanAsync(new KillScenario(), output);
        Assert.True(result.Injected >= 10, $"only {result.Injected} kills");
    }
}
