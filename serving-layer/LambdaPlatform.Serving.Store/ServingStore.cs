using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Serving.Store;

/// <summary>
/// Typed access to the state the serving ClickHouse keeps besides the views' rows: each view's batch watermark W,
/// the days its real-time table holds, and how far (per Kafka partition) the real-time side has counted. Every
/// process (speed, batch, API) reads and writes this state through here, so it lives in ClickHouse, never in one
/// process's memory. SQL accepted by ClickHouse 18.16 and 26.5. Thread-safe (stateless). One partial file per
/// kind of state (this one: watermarks and real-time partitions; the others: the pipeline's progress and change markers).
/// </summary>
/// <param name="clickHouse">The serving ClickHouse.</param>
public sealed partial class ServingStore(IClickHouse clickHouse)
{
    /// <summary>The serving ClickHouse.</summary>
    public IClickHouse ClickHouse { get; } = clickHouse ?? throw new ArgumentNullException(nameof(clickHouse));

    /// <summary>
    /// Creates a view's serving objects (watermark table, <c>_rt</c>, <c>_batch</c>, the merged view) and the pipeline-state
    /// tables (<see cref="EnsurePipelineStateAsync"/>) if missing.
    /// </summary>
    public async Task EnsureViewAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        await EnsurePipelineStateAsync(cancellationToken);
        foreach (var statement in view.CreateServingObjects)
        {
            await ClickHouse.ExecuteAsync(statement, cancellationToken);
        }
    }

    /// <summary>The view's W: buckets below it are answered by the batch side. <see cref="DateTime.UnixEpoch"/> before the first batch.</summary>
    public async Task<DateTime> ReadWatermarkAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        return FromUnix(await ScalarAsync($"SELECT toUnixTimestamp({view.WatermarkExpression})", cancellationToken));
    }

    /// <summary>Every view's W, by view name, from the watermark table of <paramref name="database"/> (null: the session's).</summary>
    public async Task<IReadOnlyDictionary<string, DateTime>> ReadWatermarksAsync(string? database = null, CancellationToken cancellationToken = default)
    {
        var table = database is null ? ViewSql.WatermarkTable : database + "." + ViewSql.WatermarkTable;
        var result = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        foreach (var fields in await RowsAsync($"SELECT view, toUnixTimestamp(max(watermark)) FROM {table} GROUP BY view", cancellationToken))
        {
            result[fields[0]] = FromUnix(long.Parse(fields[1], CultureInfo.InvariantCulture));
        }

        return result;
    }

    /// <summary>Moves the view's W to <paramref name="watermark"/> (W never moves back: readers take the largest).</summary>
    public Task AdvanceWatermarkAsync(ViewSql view, DateTime watermark, DateTime now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        return ClickHouse.ExecuteAsync(
            $"INSERT INTO {view.WatermarkTableName} (view, watermark, updatedAt) VALUES ({ViewSql.Literal(view.View.Name)}, toDateTime({ToUnix(watermark)}, 'UTC'), toDateTime({ToUnix(now)}, 'UTC'))",
            cancellationToken);
    }

    /// <summary>The days (UTC) for which the view's real-time table holds rows (its active partitions), in order.</summary>
    public async Task<IReadOnlyList<DateOnly>> ReadRealtimeDaysAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        var (database, table) = Split(view.RealtimeTable, view.Database);
        var days = new SortedSet<DateOnly>();
        foreach (var fields in await RowsAsync(
            $"SELECT DISTINCT partition FROM system.parts WHERE database = {database} AND table = {ViewSql.Literal(table)} AND active", cancellationToken))
        {
            // PARTITION BY toYYYYMMDD(bucket): the partition id is the day, e.g. 20261205.
            if (DateOnly.TryParseExact(fields[0].Trim('\''), "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                days.Add(day);
            }
        }

        return [.. days];
    }

    /// <summary>
    /// How far the real-time side has counted into <paramref name="day"/>: per Kafka partition, the highest offset of a
    /// flush that wrote rows for the day (every event of that partition up to it that belongs to the day is counted).
    /// </summary>
    public async Task<IReadOnlyDictionary<int, long>> ReadRealtimePositionsAsync(ViewSql view, DateOnly day, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        var start = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        return await PositionsAsync(
            $"SELECT kafkaPartition, max(lastOffset) FROM {view.RealtimeTable} WHERE bucket >= toDateTime({ToUnix(start)}, 'UTC') AND bucket < toDateTime({ToUnix(start.AddDays(1))}, 'UTC') GROUP BY kafkaPartition",
            cancellationToken);
    }

    /// <summary>Per Kafka partition, the highest offset the view's real-time table holds (what a restarted speed layer must not count again).</summary>
    public Task<IReadOnlyDictionary<int, long>> ReadRealtimePositionsAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        return PositionsAsync($"SELECT kafkaPartition, max(lastOffset) FROM {view.RealtimeTable} GROUP BY kafkaPartition", cancellationToken);
    }

    /// <summary>Drops the view's real-time rows of <paramref name="day"/> (call only once W is past the day).</summary>
    public Task DropRealtimeDayAsync(ViewSql view, DateOnly day, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        return ClickHouse.ExecuteAsync($"ALTER TABLE {view.RealtimeTable} DROP PARTITION {day.ToString("yyyyMMdd", CultureInfo.InvariantCulture)}", cancellationToken);
    }

    /// <summary>The view's W and its newest real-time bucket (null when none), in one query.</summary>
    public async Task<(DateTime? Watermark, DateTime? NewestRealtimeBucket)> ReadFreshnessAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        var rows = await RowsAsync($"SELECT toUnixTimestamp({view.WatermarkExpression}), toUnixTimestamp(max(bucket)), count() FROM {view.RealtimeTable}", cancellationToken);
        var fields = rows.Count > 0 ? rows[0] : ["0", "0", "0"];
        var w = long.Parse(fields[0], CultureInfo.InvariantCulture);
        var newest = long.Parse(fields[1], CultureInfo.InvariantCulture);
        return (w > 0 ? FromUnix(w) : null, fields[2] != "0" && newest > 0 ? FromUnix(newest) : null);
    }

    private async Task<IReadOnlyDictionary<int, long>> PositionsAsync(string sql, CancellationToken cancellationToken)
    {
        var result = new Dictionary<int, long>();
        foreach (var fields in await RowsAsync(sql, cancellationToken))
        {
            result[int.Parse(fields[0], CultureInfo.InvariantCulture)] = long.Parse(fields[1], CultureInfo.InvariantCulture);
        }

        return result;
    }

    private async Task<long> ScalarAsync(string sql, CancellationToken cancellationToken)
    {
        var rows = await RowsAsync(sql, cancellationToken);
        return rows.Count == 0 || rows[0][0].Length == 0 ? 0 : long.Parse(rows[0][0], CultureInfo.InvariantCulture);
    }

    private async Task<List<string[]>> RowsAsync(string sql, CancellationToken cancellationToken)
    {
        await using var stream = await ClickHouse.QueryAsync(sql, "TabSeparated", cancellationToken);
        using var reader = new StreamReader(stream);
        var rows = new List<string[]>();
        while (await reader.ReadLineAsync(cancellationToken) is { Length: > 0 } line)
        {
            rows.Add(line.Split('\t'));
        }

        return rows;
    }

    private static (string Database, string Table) Split(string qualified, string? database) =>
        database is null ? ("currentDatabase()", qualified) : (ViewSql.Literal(database), qualified[(database.Length + 1)..]);

    private static DateTime FromUnix(long seconds) => DateTime.UnixEpoch.AddSeconds(seconds);

    private static long ToUnix(DateTime time) => (long)Math.Floor((time - DateTime.UnixEpoch).TotalSeconds);
}
