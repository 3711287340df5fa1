using System.Text.Json.Serialization;

namespace LambdaPlatform.Benchmarks;

/// <summary>One figure of <c>artifacts/bench.json</c>, compared with a baseline or peer measured in the same run.</summary>
/// <param name="Name">Figure name as the issues give it, e.g. <c>validate.events_per_s</c>.</param>
/// <param name="Value">Median measured value.</param>
/// <param name="Unit">Unit of <paramref name="Value"/>.</param>
/// <param name="Baseline">Name of the figure it is compared with, or null.</param>
/// <param name="BaselineValue">That figure's value in this run, or null.</param>
/// <param name="Ratio"><c>Value / BaselineValue</c>, or null.</param>
public sealed record BenchFigure(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("value")] double Value,
    [property: JsonPropertyName("unit")] string Unit,
    [property: JsonPropertyName("baseline")] string? Baseline = null,
    [property: JsonPropertyName("baselineValue")] double? BaselineValue = null,
    [property: JsonPropertyName("ratio")] double? Ratio = null)
{
    /// <summary><c>git rev-parse HEAD</c> of the measured tree, with <c>-dirty</c> when it had uncommitted changes.</summary>
    [JsonPropertyName("commit")]
    public string? Commit { get; init; }

    /// <summary>When the run ended (UTC, ISO-8601).</summary>
    [JsonPropertyName("date")]
    public string? Date { get; init; }

    /// <summary>Processors the machine has (<see cref="Environment.ProcessorCount"/>).</summary>
    [JsonPropertyName("cores")]
    public int? Cores { get; init; }

    /// <summary>Memory of the machine in GiB (<c>MemTotal</c> of <c>/proc/meminfo</c>).</summary>
    [JsonPropertyName("memoryGiB")]
    public double? MemoryGiB { get; init; }

    /// <summary>
    /// Set only when the figure must not be trusted as measured (e.g. a peer computed other rows than the platform,
    /// or a producer missed its rate); says why. Omitted from the JSON otherwise.
    /// </summary>
    [JsonPropertyName("warning")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Warning { get; init; }

    /// <summary>This figure compared with <paramref name="baseline"/>.</summary>
    public BenchFigure ComparedWith(BenchFigure baseline) =>
        this with { Baseline = baseline.Name, BaselineValue = baseline.Value, Ratio = baseline.Value == 0 ? null : Value / baseline.Value };

    /// <summary>This figure with <paramref name="warning"/> added (null leaves it unchanged).</summary>
    public BenchFigure WarnedThat(string? warning) =>
        warning is null ? this : this with { Warning = Warning is null ? warning : Warning + "; " + warning };
}
