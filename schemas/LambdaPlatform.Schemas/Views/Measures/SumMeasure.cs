namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary><c>sum(path)</c>: the sum of a number field (see <see cref="FoldMeasure"/>).</summary>
public sealed class SumMeasure(string name, FieldPath path) : FoldMeasure(name, path, "sum", (a, b) => a + b, Rounding)
{
    /// <summary>
    /// Relative difference between a real-time and an exact sum that counts as the same sum: 1e-9. A sum of doubles
    /// depends on the order of addition (real-time deltas added per flush, then in ClickHouse, against one batch pass);
    /// that rounding is many orders of magnitude below 1e-9 of the sum of non-negative values, and one event more or
    /// less almost always above it (the count catches the rest).
    /// </summary>
    public const double Rounding = 1e-9;

    /// <summary>How it is written: <c>sum(path)</c>.</summary>
    public static MeasureSyntax Syntax { get; } = FoldSyntax("sum", (name, path) => new SumMeasure(name, path));
}
