using System.Text.Json;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>
/// A number field folded with one associative operation that SQL spells the same way in ClickHouse and Spark and
/// that rolls up by itself: sum, min and max. Values that are not JSON numbers are skipped; the result is NULL when
/// no event had a number there (SQL's rule for aggregates over no values). Exact on both sides (a sum up to the
/// floating-point rounding of the order of addition).
/// </summary>
public abstract class FoldMeasure : Measure
{
    private readonly Func<double, double, double> _fold;
    private readonly double _rounding;

    /// <summary>Creates the measure.</summary>
    /// <param name="name">Column name.</param>
    /// <param name="path">A field that may hold a number.</param>
    /// <param name="function">The SQL aggregate (also the kind's keyword): <c>sum</c>, <c>min</c> or <c>max</c>.</param>
    /// <param name="fold">The same operation in C#.</param>
    /// <param name="rounding">
    /// Relative difference between the real-time and the exact value that is floating-point rounding, not an error: 0
    /// for an operation whose result is one of its inputs (min, max).
    /// </param>
    private protected FoldMeasure(string name, FieldPath path, string function, Func<double, double, double> fold, double rounding = 0)
        : base(name, path)
    {
        Kind = function;
        _fold = fold;
        _rounding = rounding;
    }

    /// <inheritdoc />
    public override string Kind { get; }

    /// <inheritdoc />
    public override MeasureInput Input => MeasureInput.Number;

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> RealtimeColumns => [new(Name, "Nullable(Float64)")];

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> ServedColumns => [new(Name, "Nullable(Float64)")];

    /// <inheritdoc />
    public override MeasureState NewState() => new State(_fold);

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeMergeSql() => [$"{Kind}({ViewSql.Quote(Name)}) AS {MergedAlias}"];

    /// <inheritdoc />
    public override IEnumerable<string> BatchSql(string value) => [$"{Kind}({value}) AS {ViewSql.Quote(Name)}"];

    /// <inheritdoc />
    public override IEnumerable<string> SparkSql(string value) => [$"{Kind}({value}) AS `{Name}`"];

    /// <inheritdoc />
    public override string? RollupSql(string column) => $"{Kind}({column})";

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, IReadOnlyList<string> fields) => WriteNumber(writer, Name, fields[0]);

    /// <summary>Exact up to the rounding given at construction; a side without a row has no value (NULL).</summary>
    public override MeasureComparison Compare(IReadOnlyList<string>? realtime, IReadOnlyList<string>? exact) =>
        CompareNumbers(realtime?[0] ?? ClickHouseText.Null, exact?[0] ?? ClickHouseText.Null, _rounding);

    /// <summary>The syntax of a fold kind: <c>keyword(path)</c>, the path able to hold a number.</summary>
    private protected static MeasureSyntax FoldSyntax(string keyword, Func<string, FieldPath, Measure> create) =>
        new(keyword, keyword + "(path)", TakesPath: true, [], (name, path, _) =>
        {
            MeasureDefinitionException.RequireNumber(keyword, path!);
            return create(name, path!);
        });

    private sealed class State(Func<double, double, double> fold) : MeasureState
    {
        private double _value;
        private bool _seen;

        public override void Add(in FieldValue value)
        {
            if (value.IsNumber)
            {
                Fold(value.Number);
            }
        }

        public override void Merge(MeasureState other)
        {
            var o = (State)other;
            if (o._seen)
            {
                Fold(o._value);
            }
        }

        public override void WriteTo(List<object?> row) => row.Add(_seen ? _value : null);

        private void Fold(double value)
        {
            _value = _seen ? fold(_value, value) : value;
            _seen = true;
        }
    }
}
