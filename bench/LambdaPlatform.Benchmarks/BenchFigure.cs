using System.Text.Json.Serialization;

namespace LambdaPlatform.Benchmarks;

/// <summary>One figure of <c>artifacts/bench.json</c>, compared with a baseline measured in the same run.</summary>
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
    /// <summary>This figure compared with <paramref name="baseline"/>.</summary>
    public BenchFigure ComparedWith(BenchFigure baseline) =>
        this with { Baseline = baseline.Name, BaselineValue = baseline.Value, Ratio = baseline.Value == 0 ? null : Value / baseline.Value };
}
