using System.Text.Json;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary><c>count</c>: the number of events (of the view's types, passing its filters, duplicates removed). Exact on both sides.</summary>
public sealed class CountMeasure(string name) : Measure(name, null)
{
    /// <summary>How it is written: <c>count</c> or <c>count()</c>.</summary>
    public static MeasureSyntax Syntax { get; } = new("count", "count", TakesPath: false, [], (name, _, _) => new CountMeasure(name));

    /// <inheritdoc />
    public override string Kind => "count";

    /// <inheritdoc />
    public override MeasureInput Input => MeasureInput.None;

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> RealtimeColumns => [new(Name, "UInt64")];

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> ServedColumns => [new(Name, "UInt64")];

    /// <inheritdoc />
    public override MeasureState NewState() => new State();

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeMergeSql() => [$"sum({ViewSql.Quote(Name)}) AS {MergedAlias}"];

    /// <inheritdoc />
    public override IEnumerable<string> BatchSql(string value) => [$"toUInt64(count()) AS {ViewSql.Quote(Name)}"];

    /// <inheritdoc />
    public override IEnumerable<string> SparkSql(string value) => [$"CAST(count(*) AS BIGINT) AS `{Name}`"];

    /// <inheritdoc />
    public override string? RollupSql(string column) => $"toUInt64(sum({column}))";

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, IReadOnlyList<string> fields) => WriteNumber(writer, Name, fields[0]);

    /// <summary>Exact: any difference is out of bound; a side without a row counted 0 events.</summary>
    public override MeasureComparison Compare(IReadOnlyList<string>? realtime, IReadOnlyList<string>? exact) =>
        CompareNumbers(realtime?[0] ?? "0", exact?[0] ?? "0", bound: 0);

    private sealed class State : MeasureState
    {
        private ulong _count;

        public override void Add(in FieldValue value) => _count++;

        public override void Merge(MeasureState other) => _count += ((State)other)._count;

        public override void WriteTo(List<object?> row) => row.Add(_count);
    }
}
