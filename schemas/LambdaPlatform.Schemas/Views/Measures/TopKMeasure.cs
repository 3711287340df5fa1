using System.Globalization;
using System.Text.Json;
using LambdaPlatform.Schemas.Sketches;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>
/// <c>topk(path, k)</c>: the k most frequent values of a field (by their text, <see cref="FieldText"/>) with their
/// counts, largest first, ties by value; missing and null values are skipped. Exact in batch; in real time a
/// Space-Saving summary of <see cref="Capacity"/> counters per delta row, merged in ClickHouse: exact while a bucket
/// holds at most that many distinct values, else each count over-estimates by at most n/capacity. Served as
/// (item, count) pairs: columns <c>&lt;name&gt;_items</c> and <c>&lt;name&gt;_counts</c>, JSON
/// <c>[{"item": …, "count": …}]</c>.
/// </summary>
public sealed class TopKMeasure : Measure
{
    /// <summary>Creates the measure.</summary>
    /// <param name="name">Column name.</param>
    /// <param name="path">The field.</param>
    /// <param name="k">How many values, 1 to 1,000.</param>
    public TopKMeasure(string name, FieldPath path, int k)
        : base(name, path)
    {
        K = k is >= 1 and <= 1000 ? k : throw new ArgumentOutOfRangeException(nameof(k), k, "k must be from 1 to 1000");
    }

    /// <summary>How it is written: <c>topk(path, k)</c>, k a whole number from 1 to 1,000.</summary>
    public static MeasureSyntax Syntax { get; } = new("topk", "topk(path, k)", TakesPath: true, ["k"], (name, path, args) =>
        int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var k) && k is >= 1 and <= 1000
            ? new TopKMeasure(name, path!, k)
            : throw new MeasureDefinitionException($"k must be a whole number from 1 to 1000, not '{args[0]}'"));

    /// <summary>How many values are served.</summary>
    public int K { get; }

    /// <summary>Counters kept per real-time delta row: max(64, 4k).</summary>
    public int Capacity => Math.Max(64, 4 * K);

    /// <inheritdoc />
    public override string Kind => "topk";

    /// <inheritdoc />
    public override string Definition => $"topk({Path!.Text}, {K.ToString(CultureInfo.InvariantCulture)})";

    /// <inheritdoc />
    public override MeasureInput Input => MeasureInput.Text;

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> RealtimeColumns => [new(Name + "_items", "Array(String)"), new(Name + "_counts", "Array(UInt64)")];

    /// <inheritdoc />
    public override IReadOnlyList<ViewColumn> ServedColumns => [new(Name + "_items", "Array(String)"), new(Name + "_counts", "Array(UInt64)")];

    /// <inheritdoc />
    public override MeasureState NewState() => new State(Capacity);

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeMergeSql()
    {
        // ClickHouse 18.16's sumMap takes numeric keys only: sum the counts per sipHash64 of the item, and line the
        // distinct items up with those sums by sorting them by the same hash (a 64-bit collision would make the two
        // arrays differ in length, and the query fail rather than answer wrongly).
        var items = ViewSql.Quote(Name + "_items");
        var sums = $"(sumMap(arrayMap(x -> sipHash64(x), {items}), {ViewSql.Quote(Name + "_counts")})).2";
        var names = $"arraySort(x -> sipHash64(x), groupUniqArrayArray({items}))";
        yield return $"{Top($"arrayMap((i, c) -> (i, c), {names}, {sums})")} AS {MergedAlias}";
    }

    /// <inheritdoc />
    public override IEnumerable<string> RealtimeFinalSql() =>
    [
        $"CAST(arrayMap(x -> x.1, {MergedAlias}) AS Array(String)) AS {ViewSql.Quote(Name + "_items")}",
        $"CAST(arrayMap(x -> x.2, {MergedAlias}) AS Array(UInt64)) AS {ViewSql.Quote(Name + "_counts")}",
    ];

    /// <inheritdoc />
    public override IEnumerable<string> BatchSql(string value)
    {
        var counted = $"sumMapIf([assumeNotNull({value})], [toUInt64(1)], isNotNull({value}))";
        var top = Top($"arrayMap((i, c) -> (i, c), ({counted}).1, ({counted}).2)");
        return [$"arrayMap(x -> x.1, {top}) AS {ViewSql.Quote(Name + "_items")}", $"arrayMap(x -> x.2, {top}) AS {ViewSql.Quote(Name + "_counts")}"];
    }

    /// <inheritdoc />
    public override IEnumerable<string> SparkSql(string value)
    {
        var counted = $"slice(array_sort(transform(map_entries(aggregate(collect_list({value}), map(), (acc, v) -> map_concat(map_filter(acc, (k, c) -> k != v), map(v, coalesce(acc[v], 0) + 1)))), e -> named_struct('c', -e.value, 'v', e.key))), 1, {K.ToString(CultureInfo.InvariantCulture)})";
        return [$"transform({counted}, e -> e.v) AS `{Name}_items`", $"transform({counted}, e -> CAST(-e.c AS BIGINT)) AS `{Name}_counts`"];
    }

    /// <inheritdoc />
    public override string? RollupSql(string column) => null;

    /// <inheritdoc />
    public override void WriteJson(Utf8JsonWriter writer, IReadOnlyList<string> fields)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartArray(Name);
        foreach (var (item, count) in Pairs(fields))
        {
            writer.WriteStartObject();
            writer.WriteString("item", item);
            writer.WriteNumber("count", count);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    /// <summary>
    /// Top-k misses: items of the exact top-k absent from the real-time top-k, and over the items on both, the sum of
    /// their count differences. Never out of bound: Space-Saving is exact only while a bucket's values fit its counters.
    /// </summary>
    public override MeasureComparison Compare(IReadOnlyList<string>? realtime, IReadOnlyList<string>? exact)
    {
        var served = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (realtime is not null)
        {
            foreach (var (item, count) in Pairs(realtime))
            {
                served[item] = count;
            }
        }

        var misses = 0;
        ulong difference = 0;
        foreach (var (item, count) in exact is null ? [] : Pairs(exact))
        {
            if (served.TryGetValue(item, out var other))
            {
                difference += count > other ? count - other : other - count;
            }
            else
            {
                misses++;
            }
        }

        return new MeasureComparison(OutOfBound: false, RelativeError: null, misses, difference);
    }

    /// <summary>The (item, count) pairs of the served columns' fields.</summary>
    private static IEnumerable<(string Item, ulong Count)> Pairs(IReadOnlyList<string> fields)
    {
        var items = ClickHouseText.Array(fields[0]);
        var counts = ClickHouseText.Array(fields[1]);
        for (var i = 0; i < items.Count && i < counts.Count; i++)
        {
            yield return (items[i], ulong.Parse(counts[i], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The k (item, count) pairs with the largest counts, ties by item: the order of <see cref="SpaceSaving.Top"/>.</summary>
    private string Top(string pairs) =>
        $"arraySlice(arraySort(x -> (-toInt64(x.2), x.1), {pairs}), 1, {K.ToString(CultureInfo.InvariantCulture)})";

    private sealed class State(int capacity) : MeasureState
    {
        private readonly SpaceSaving _summary = new(capacity);

        public override void Add(in FieldValue value)
        {
            if (value.AsText() is { } text)
            {
                _summary.Add(text);
            }
        }

        public override void Merge(MeasureState other) => _summary.Merge(((State)other)._summary);

        public override void WriteTo(List<object?> row)
        {
            var top = _summary.Top(_summary.Capacity);
            row.Add(top.Select(t => t.Key).ToArray());
            row.Add(top.Select(t => t.Value).ToArray());
        }
    }
}
