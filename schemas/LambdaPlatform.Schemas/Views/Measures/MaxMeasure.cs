namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary><c>max(path)</c>: the largest value of a number field (see <see cref="FoldMeasure"/>).</summary>
public sealed class MaxMeasure(string name, FieldPath path) : FoldMeasure(name, path, "max", Math.Max)
{
    /// <summary>How it is written: <c>max(path)</c>.</summary>
    public static MeasureSyntax Syntax { get; } = FoldSyntax("max", (name, path) => new MaxMeasure(name, path));
}
