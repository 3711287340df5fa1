using System.Text.Json;
using LambdaPlatform.Schemas.Sketches;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>
/// <c>distinct(path)</c>: the number of distinct values of a field, compared by their text (<see cref="FieldText"/>);
/// missing and null values are skipped. Exact in batch (<c>uniqExact</c>); in real time a HyperLogLog with 4,096
/// registers (standard error 1.6%) whose registers merge across flushes and instances.
/// </summary>
public sealed class DistinctMeasure(string name, FieldPath path) : Measure(name, path)
{
    /// <summary>How it is written: <c>distinct(path)</c>.</summary>
    public static MeasureSyntax Syntax { get; } = new("distinct", "distinct(path)", TakesPath: true, [], (name, path, _) => new DistinctMeasure(name, path!));

    /// <inheritdoc />
    public override string Kind => "distinct";

    /// <inheritdoc />
    public override MeasureInput Input => MeasureInput.Text;

    /// <summary>Three standard errors of the HyperLogLog (about 99.7% of estimates fall within it).</summary>
    public override double RealtimeRelativeError => 3 * HyperLogLog.StandardError;

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> RealtimeColumns => [new(Name + "_hll", "Array(UInt8)")];

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> ServedColumns => [new(Name, "UInt64")];

    /// <inheritdoc />
    public override MeasureState NewState() => new State();

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeMergeSql() => [$"maxForEach({ViewSql.Quote(Name + "_hll")}) AS {MergedAlias}"];

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeFinalSql() => [$"{HyperLogLog.SqlEstimate(MergedAlias)} AS {ViewSql.Quote(Name)}"];

    /// <inheritdoc />
    public override IEnumerable<string> BatchSql(string value) => [$"toUInt64(uniqExact({value})) AS {ViewSql.Quote(Name)}"];

    /// <inheritdoc />
    public override IEnumerable<string> SparkSql(string value) => [$"CAST(count(DISTINCT {value}) AS BIGINT) AS `{Name}`"];

    /// <inheritdoc />
    public override string? RollupSql(string column) => null;

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, IReadOnlyList<string> fields) => WriteNumber(writer, Name, fields[0]);

    /// <summary>Out of bound beyond <see cref="RealtimeRelativeError"/>; a side without a row saw 0 distinct values.</summary>
    public override MeasureComparison Compare(IReadOnlyList<string>? realtime, IReadOnlyList<string>? exact) =>
        CompareNumbers(realtime?[0] ?? "0", exact?[0] ?? "0", RealtimeRelativeError);

    private sealed class State : MeasureState
    {
        private readonly HyperLogLog _hll = new();

        public override void Add(in FieldValue value)
        {
            if (value.Kind != FieldKind.Missing)
            {
                _hll.AddHash(value.TextHash());
            }
        }

        public override void Merge(MeasureState other) => _hll.Merge(((State)other)._hll);

        public override void WriteTo(List<object?> row) => row.Add(_hll.RegisterValues.ToArray());
    }
}
