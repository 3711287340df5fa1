using System.Globalization;
using System.Text.Json;
using LambdaPlatform.Schemas.Sketches;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>
/// <c>quantile(path, q)</c>: the q-quantile of a number field by the nearest-rank rule — the ⌈q·n⌉-th smallest of
/// the n values (so the p99 of two values is the larger one; the rule of HdrHistogram and most latency tools). Values
/// that are not JSON numbers are skipped; NULL when there are none. Exact in batch; in real time a DDSketch whose
/// answer is within 1% (relative) of the value of that rank.
/// </summary>
public sealed class QuantileMeasure : Measure
{
    /// <summary>Slack subtracted from q·n before rounding up, so that e.g. 0.07·100 = 7.000000000000001 gives rank 7.</summary>
    private const double RankSlack = 1e-9;

    /// <summary>Creates the measure.</summary>
    /// <param name="name">Column name.</param>
    /// <param name="path">A field that may hold a number.</param>
    /// <param name="q">The quantile, in (0, 1).</param>
    public QuantileMeasure(string name, FieldPath path, double q)
        : base(name, path)
    {
        Q = q is > 0 and < 1 ? q : throw new ArgumentOutOfRangeException(nameof(q), q, "q must be between 0 and 1 (exclusive)");
    }

    /// <summary>How it is written: <c>quantile(path, q)</c>, q between 0 and 1 (exclusive).</summary>
    public static MeasureSyntax Syntax { get; } = new("quantile", "quantile(path, q)", TakesPath: true, ["q"], (name, path, args) =>
    {
        MeasureDefinitionException.RequireNumber("quantile", path!);
        return double.TryParse(args[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var q) && q is > 0 and < 1
            ? new QuantileMeasure(name, path!, q)
            : throw new MeasureDefinitionException($"q must be a number between 0 and 1 (exclusive), not '{args[0]}'");
    });

    /// <summary>The quantile q.</summary>
    public double Q { get; }

    /// <inheritdoc />
    public override string Kind => "quantile";

    /// <inheritdoc />
    public override string Definition => $"quantile({Path!.Text}, {Num(Q)})";

    /// <inheritdoc />
    public override MeasureInput Input => MeasureInput.Number;

    /// <inheritdoc />
    public override double RealtimeRelativeError => DDSketch.RelativeAccuracy;

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> RealtimeColumns => [new(Name + "_keys", "Array(Int32)"), new(Name + "_counts", "Array(UInt64)")];

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> ServedColumns => [new(Name, "Nullable(Float64)")];

    /// <summary>The 1-based nearest rank ⌈q·n⌉ (at least 1) among <paramref name="n"/> values.</summary>
    public static ulong NearestRank(double q, ulong n) => Math.Max(1UL, (ulong)Math.Ceiling((q * n) - RankSlack));

    /// <inheritdoc />
    public override MeasureState NewState() => new State();

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeMergeSql() =>
        [$"sumMap({ViewSql.Quote(Name + "_keys")}, {ViewSql.Quote(Name + "_counts")}) AS {MergedAlias}"];

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeFinalSql() =>
        [$"CAST({DDSketch.SqlValueAtRank(MergedAlias, n => RankSql(n))} AS Nullable(Float64)) AS {ViewSql.Quote(Name)}"];

    /// <inheritdoc />
    public override IEnumerable<string> BatchSql(string value) =>
        [$"if(count({value}) = 0, NULL, arrayElement(arraySort(groupArray({value})), {RankSql($"count({value})")})) AS {ViewSql.Quote(Name)}"];

    /// <inheritdoc />
    public override IEnumerable<string> SparkSql(string value) =>
        [$"CASE WHEN count({value}) = 0 THEN NULL ELSE try_element_at(array_sort(collect_list({value})), CAST(greatest(1, ceil({Num(Q)} * count({value}) - {Num(RankSlack)})) AS INT)) END AS `{Name}`"];

    /// <inheritdoc />
    public override string? RollupSql(string column) => null;

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, IReadOnlyList<string> fields) => WriteNumber(writer, Name, fields[0]);

    /// <summary>Out of bound beyond <see cref="RealtimeRelativeError"/> of the nearest-rank value; a side without a row has none (NULL).</summary>
    public override MeasureComparison Compare(IReadOnlyList<string>? realtime, IReadOnlyList<string>? exact) =>
        CompareNumbers(realtime?[0] ?? ClickHouseText.Null, exact?[0] ?? ClickHouseText.Null, RealtimeRelativeError);

    /// <summary><see cref="NearestRank"/> in ClickHouse SQL, over the count expression <paramref name="n"/>.</summary>
    private string RankSql(string n) => $"toUInt64(greatest(1, ceil({Num(Q)} * {n} - {Num(RankSlack)})))";

    private sealed class State : MeasureState
    {
        private readonly DDSketch _sketch = new();

        public override void Add(in FieldValue value)
        {
            if (value.IsNumber)
            {
                _sketch.Add(value.Number);
            }
        }

        public override void Merge(MeasureState other) => _sketch.Merge(((State)other)._sketch);

        public override void WriteTo(List<object?> row)
        {
            var buckets = _sketch.Buckets.ToArray();
            row.Add(buckets.Select(b => b.Key).ToArray());
            row.Add(buckets.Select(b => b.Value).ToArray());
        }
    }
}
