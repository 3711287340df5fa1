using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Serving.Store;

/// <summary>This file: the accuracy reports of the real-time side (<see cref="AccuracyReport"/>), table <see cref="AccuracyTable"/>.</summary>
public sealed partial class ServingStore
{
    /// <summary>Table holding the accuracy reports of every view, one row per view, day and measure; unqualified.</summary>
    public const string AccuracyTable = "lambda_accuracy";

    /// <summary>ClickHouse's UNKNOWN_TABLE: no report was written yet.</summary>
    private const int UnknownTable = 60;

    private static readonly ClickHouseColumn[] AccuracyColumns =
    [
        new("view", "String"), new("day", "Date"), new("measure", "String"), new("kind", "String"), new("definition", "String"),
        new("exact", "UInt8"), new("bound", "Float64"), new("comparedAt", "DateTime"), new("realtimeRows", "UInt64"), new("batchRows", "UInt64"),
        new("bucketsCompared", "UInt64"), new("bucketsOutOfBound", "UInt64"), new("maxRelativeError", "Nullable(Float64)"),
        new("meanRelativeError", "Nullable(Float64)"), new("topkMisses", "UInt64"), new("topkCountDifference", "UInt64"),
        new("outOfBoundBuckets", "Array(String)"),
    ];

    /// <summary>
    /// DDL of the accuracy table in <paramref name="database"/> (null: unqualified); accepted by ClickHouse 18.16 and 26.5.
    /// A later report of the same view, day and measure replaces an earlier one.
    /// </summary>
    public static string CreateAccuracyTable(string? database = null) => $"""
        CREATE TABLE IF NOT EXISTS {AccuracyTableName(database)} (
        {string.Join(",\n", AccuracyColumns.Select(c => $"    {ViewSql.Quote(c.Name)} {(c.Type == "DateTime" ? "DateTime('UTC')" : c.Type)}"))}
        ) ENGINE = ReplacingMergeTree(comparedAt)
        PARTITION BY toYYYYMM(day)
        ORDER BY (view, day, measure)
        """;

    /// <summary>Stores <paramref name="report"/> (creating the table if missing), replacing an earlier report of the same view and day.</summary>
    public async Task WriteAccuracyAsync(ViewSql view, AccuracyReport report, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(report);
        await ClickHouse.ExecuteAsync(CreateAccuracyTable(view.Database), cancellationToken);
        var comparedAt = DateTime.SpecifyKind(report.ComparedAt, DateTimeKind.Utc);
        await ClickHouse.InsertAsync(AccuracyTableName(view.Database), AccuracyColumns, report.Measures.Select(m => new object?[]
        {
            report.View, report.Day, m.Measure, m.Kind, m.Definition, m.Exact ? (byte)1 : (byte)0, m.Bound, comparedAt,
            (ulong)report.RealtimeRows, (ulong)report.BatchRows, (ulong)m.BucketsCompared, (ulong)m.BucketsOutOfBound,
            m.MaxRelativeError, m.MeanRelativeError, (ulong)m.TopKMisses, m.TopKCountDifference, m.OutOfBoundBuckets.ToArray(),
        }), cancellationToken);
    }

    /// <summary>The view's accuracy reports, newest day first, at most <paramref name="days"/> of them; empty before the first.</summary>
    public async Task<IReadOnlyList<AccuracyReport>> ReadAccuracyAsync(ViewSql view, int days = 30, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(days);
        var name = ViewSql.Literal(view.View.Name);
        var table = AccuracyTableName(view.Database);
        var columns = string.Join(", ", AccuracyColumns.Select(c => c.Type == "DateTime" ? $"toUnixTimestamp({ViewSql.Quote(c.Name)})" : ViewSql.Quote(c.Name)));
        List<string[]> rows;
        try
        {
            // FINAL: the latest report of a day, also before ClickHouse merged the parts.
            rows = await RowsAsync(
                $"SELECT {columns} FROM {table} FINAL WHERE view = {name} AND day IN (SELECT DISTINCT day FROM {table} WHERE view = {name} ORDER BY day DESC LIMIT {days.ToString(CultureInfo.InvariantCulture)}) ORDER BY day DESC",
                cancellationToken);
        }
        catch (ClickHouseException e) when (e.ErrorCode == UnknownTable)
        {
            return [];
        }

        var order = view.View.Measures.Select((m, i) => (m.Name, i)).ToDictionary(x => x.Name, x => x.i, StringComparer.Ordinal);
        return [.. rows.GroupBy(f => f[1]).Select(day =>
        {
            var first = day.First();
            var measures = day.Select(ReadMeasure).OrderBy(m => order.GetValueOrDefault(m.Measure, int.MaxValue)).ThenBy(m => m.Measure, StringComparer.Ordinal).ToList();
            return new AccuracyReport(view.View.Name, DateOnly.ParseExact(first[1], "yyyy-MM-dd", CultureInfo.InvariantCulture),
                FromUnix(long.Parse(first[7], CultureInfo.InvariantCulture)), long.Parse(first[8], CultureInfo.InvariantCulture),
                long.Parse(first[9], CultureInfo.InvariantCulture), measures);
        })];
    }

    private static MeasureAccuracy ReadMeasure(string[] f) => new(
        ClickHouseText.Unescape(f[2]), ClickHouseText.Unescape(f[3]), ClickHouseText.Unescape(f[4]), f[5] == "1",
        double.Parse(f[6], CultureInfo.InvariantCulture), long.Parse(f[10], CultureInfo.InvariantCulture), long.Parse(f[11], CultureInfo.InvariantCulture),
        ClickHouseText.Number(f[12]), ClickHouseText.Number(f[13]), long.Parse(f[14], CultureInfo.InvariantCulture),
        ulong.Parse(f[15], CultureInfo.InvariantCulture), ClickHouseText.Array(f[16]));

    private static string AccuracyTableName(string? database) => database is null ? AccuracyTable : database + "." + AccuracyTable;
}
