namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary><c>min(path)</c>: the smallest value of a number field (see <see cref="FoldMeasure"/>).</summary>
public sealed class MinMeasure(string name, FieldPath path) : FoldMeasure(name, path, "min", Math.Min)
{
    /// <summary>How it is written: <c>min(path)</c>.</summary>
    public static MeasureSyntax Syntax { get; } = FoldSyntax("min", (name, path) => new MinMeasure(name, path));
}
