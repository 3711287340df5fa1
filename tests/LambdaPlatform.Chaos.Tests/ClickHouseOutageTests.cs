using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>ClickHouse unavailable while events flow: offsets held, health red, memory bounded, nothing lost or doubled afterwards.</summary>
[Collection("chaos")]
public sealed class ClickHouseOutageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ServerDown_SpeedLayerHoldsOffsetsAndCatchesUpExactly_WhenClickHouseServerIsKilledFor30Seconds()
    {
        var result = await ChaosAssert.RunCleanAsync(new ClickHouseOutageScenario(), output);
        Assert.Contains(result.Notes, n => n.StartsWith("/health went 503", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WritesFail_EmbeddedPlatformHoldsOffsetsAndCatchesUpExactly_WhenChDbWritesFailFor30Seconds()
    {
        var result = await ChaosAssert.RunCleanAsync(new ClickHouseOutageEmbeddedScenario(), output);
        Assert.Contains(result.Notes, n => n.StartsWith("/health went 503", StringComparison.Ordinal) && n.Contains("injected fault", StringComparison.Ordinal));
    }
}
