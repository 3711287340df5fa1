using LambdaPlatform.Chaos.Scenarios;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>The master dataset's filesystem fills up while events flow: the archiver holds its offsets, says so, and resumes without a gap.</summary>
[Collection("chaos")]
public sealed class DiskFullTests(ITestOutputHelper output)
{
    [Fact]
    public async Task DiskFull_ArchiverHoldsOffsetsAndArchivesEveryOffsetOnce_WhenTheMasterDatasetFilesystemIsFullFor30Seconds()
    {
        var result = await ChaosAssert.RunCleanAsync(new DiskFullScenario(), output);
        Assert.Contains(result.Notes, n => n.StartsWith("health went unhealthy", StringComparison.Ordinal) && n.Contains("No space left on device", StringComparison.Ordinal));
    }
}
