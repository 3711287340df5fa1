namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary><c>sum(path)</c>: the sum of a number field (see <see cref="FoldMeasure"/>).</summary>
public sealed class SumMeasure(string name, FieldPath path) : FoldMeasure(name, path, "sum", (a, b) => a + b)
{
    /// <summary>How it is written: <c>sum(path)</c>.</summary>
    public static MeasureSyntax Syntax { get; } = FoldSyntax("sum", (name, path) => new SumMeasure(name, path));
}
