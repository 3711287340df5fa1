using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Batch.Recompute;

/// <summary>What one view-day recompute did.</summary>
/// <param name="View">The view.</param>
/// <param name="Day">The day (UTC).</param>
/// <param name="RowsIn">Master-dataset events of the view's types that day (duplicates included).</param>
/// <param name="RowsOut">Batch rows loaded.</param>
/// <param name="Duration">Wall time.</param>
/// <param name="Watermark">The view's W after this day was loaded (moved past the day when it is closed and follows W), or null before any batch.</param>
public sealed record BatchDayResult(string View, DateOnly Day, long RowsIn, long RowsOut, TimeSpan Duration, DateTime? Watermark);

/// <summary>Progress of a batch run: days done out of days planned.</summary>
/// <param name="Done">Days finished.</param>
/// <param name="Total">Days planned.</param>
/// <param name="Current">The view and day just finished.</param>
public sealed record BatchProgress(int Done, int Total, string Current);

/// <summary>Settings of the batch recompute.</summary>
public sealed record BatchOptions
{
    /// <summary>Root of the batch layer's data: the master dataset is under <c>master/</c>, batch views under <c>views/</c>. Required.</summary>
    public string DataRoot { get; init; } = string.Empty;

    /// <summary>Throws when a setting is missing, naming it.</summary>
    public BatchOptions Validate() =>
        string.IsNullOrWhiteSpace(DataRoot) ? throw new ArgumentException("DataRoot is required (the folder holding master/ and views/)", nameof(DataRoot)) : this;
}

/// <summary>
/// Recomputes views exactly from the master dataset, one (view, day) at a time:
/// read the day's Parquet files, remove duplicates by eventId, compute every measure exactly (the view
/// compiler's batch SQL, run by the batch engine), write the batch view as Parquet
/// (<c>views/&lt;view&gt;/date=YYYY-MM-DD/</c>, published by rename), load it into a staging table and swap it into
/// <c>&lt;view&gt;_batch</c> with <c>ALTER TABLE … REPLACE PARTITION</c> (atomic), then advance the view's
/// watermark W, and only then drop real-time partitions wholly below W. A crash at any point leaves the
/// previous batch partition and W in place; running again gives the same tables.
/// </summary>
/// <remarks>
/// Which days: every closed day (its end plus the view's allowed lateness is past) not yet below W — so a
/// new view is backfilled over the whole history — and every day whose master files changed since the
/// view's last run (late events make a day dirty). W advances over consecutive computed closed days.
/// Runs of the same view must not overlap (the scheduler runs one at a time).
/// </remarks>
public sealed class BatchRecompute : IDisposable
{
    private readonly IClickHouse _engine;
    private readonly IClickHouse _serving;
    private readonly LambdaPlatform.Batch.Master.MasterDataset _master;
    private readonly BatchOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Dictionary<string, ViewSql> _views;
    private readonly SemaphoreSlim _oneRunAtATime = new(1, 1);

    /// <summary>Creates the recompute.</summary>
    /// <param name="engine">Runs the batch SQL over Parquet (chDB, or a ClickHouse that can read the files).</param>
    /// <param name="serving">Holds the serving tables (may be the same instance as <paramref name="engine"/>).</param>
    /// <param name="views">The view definitions.</param>
    /// <param name="options">Settings.</param>
    /// <param name="clock">Clock deciding which days are closed.</param>
    /// <param name="logger">Logger.</param>
    public BatchRecompute(IClickHouse engine, IClickHouse serving, IReadOnlyList<ViewDefinition> views, BatchOptions options, TimeProvider? clock = null, ILogger<BatchRecompute>? logger = null)
    {
        _engine = engine;
        _serving = serving;
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _master = new LambdaPlatform.Batch.Master.MasterDataset(_options.DataRoot, _clock);
        _views = views.ToDictionary(v => v.Name, v => new ViewSql(v), StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public void Dispose() => _oneRunAtATime.Dispose();

    /// <summary>The views known to the recompute.</summary>
    public IReadOnlyCollection<string> Views => _views.Keys;

    /// <summary>
    /// Runs the recompute: for <paramref name="view"/> (or every view) and <paramref name="day"/> (or every day
    /// that needs it). An explicit day is recomputed even when it is neither dirty nor closed (W then only
    /// moves if the day is closed).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown view.</exception>
    public async Task<IReadOnlyList<BatchDayResult>> RunAsync(string? view = null, DateOnly? day = null, IProgress<BatchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (view is not null && !_views.ContainsKey(view))
        {
            throw new ArgumentException($"unknown view '{view}' (known: {string.Join(", ", _views.Keys)})", nameof(view));
        }

        await _oneRunAtATime.WaitAsync(cancellationToken);
        try
        {
            var sequence = _master.CurrentSequence();
            var plan = new List<(ViewSql View, DateOnly Day)>();
            foreach (var sql in view is null ? [.. _views.Values] : new[] { _views[view] })
            {
                await EnsureTablesAsync(sql, cancellationToken);
                await DropLeftoverStagingAsync(sql, cancellationToken);
                var days = day is { } d ? [d] : await DaysToRunAsync(sql, cancellationToken);
                plan.AddRange(days.Select(x => (sql, x)));
            }

            var results = new List<BatchDayResult>();
            var masterDays = _master.ListDays();
            for (var i = 0; i < plan.Count; i++)
            {
                var (sql, d) = plan[i];
                var result = await RunDayAsync(sql, d, cancellationToken);

                // Advance W over this day only if it is closed and every day with events between W and it is computed.
                var watermark = await ReadWatermarkAsync(sql, cancellationToken);
                var dayStart = d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
                var gapFree = masterDays.Where(m => m.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) >= watermark && m < d)
                    .All(m => results.Any(r => r.View == sql.View.Name && r.Day == m));
                if (IsClosed(sql.View, d) && dayStart.AddDays(1) > watermark && gapFree)
                {
                    watermark = await AdvanceWatermarkAsync(sql, d, cancellationToken);
                }

                result = result with { Watermark = watermark > DateTime.UnixEpoch ? watermark : null };

                results.Add(result);
                progress?.Report(new BatchProgress(i + 1, plan.Count, $"{sql.View.Name} {d:yyyy-MM-dd}"));
            }

            // Remember how far the master dataset was read, per view, so later changes make their days dirty.
            foreach (var sql in view is null ? [.. _views.Values] : new[] { _views[view] })
            {
                if (day is null)
                {
                    await WriteStateAsync(sql.View.Name, new ViewState(sequence), cancellationToken);
                }
            }

            return results;
        }
        finally
        {
            _oneRunAtATime.Release();
        }
    }

    /// <summary>The days a run would recompute for <paramref name="view"/> now, oldest first.</summary>
    public async Task<IReadOnlyList<DateOnly>> DaysToRunAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        var watermark = await ReadWatermarkAsync(view, cancellationToken);
        var state = await ReadStateAsync(view.View.Name, cancellationToken);
        var dirty = _master.DaysChangedSince(state.Sequence).ToHashSet();
        var days = new SortedSet<DateOnly>();
        foreach (var d in _master.ListDays())
        {
            var start = d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
            var closed = IsClosed(view.View, d);
            if ((closed && start.AddDays(1) > watermark) || (start < watermark && dirty.Contains(d)))
            {
                days.Add(d);
            }
        }

        return [.. days];
    }

    private bool IsClosed(ViewDefinition view, DateOnly day) =>
        day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1) + view.AllowedLateness <= _clock.GetUtcNow().UtcDateTime;

    private async Task<BatchDayResult> RunDayAsync(ViewSql sql, DateOnly day, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var view = sql.View;
        var partition = day.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
        var files = _master.ListFiles(day);
        long rowsIn = 0;
        long rowsOut = 0;
        var runId = Guid.NewGuid().ToString("N")[..12];
        var staging = $"{sql.BatchTable}_staging_{runId}";
        await _serving.ExecuteAsync(sql.CreateBatchTable(staging), cancellationToken);
        try
        {
            if (files.Count > 0)
            {
                var glob = _master.DayGlob(day);
                rowsIn = await ScalarAsync(_engine, $"SELECT count() FROM file({ViewSql.Literal(glob)}, Parquet){TypeFilter(view)}", cancellationToken);

                // 1. The exact batch view, as Parquet, published by rename.
                var folder = Path.Combine(_options.DataRoot, "views", view.Name, $"date={day:yyyy-MM-dd}");
                Directory.CreateDirectory(folder);
                var temp = Path.Combine(folder, $".tmp-{runId}.parquet");
                var final = Path.Combine(folder, "batch.parquet");
                var structure = string.Join(", ", sql.BatchColumns.Select(c => $"{ViewSql.Quote(c.Name)} {(c.Type == "DateTime" ? "DateTime('UTC')" : c.Type)}"));
                await _engine.ExecuteAsync($"INSERT INTO FUNCTION file({ViewSql.Literal(temp)}, Parquet, {ViewSql.Literal(structure)}) {sql.BatchSelect(glob)}", cancellationToken);
                File.Move(temp, final, overwrite: true);

                // 2. Into a staging table of the serving ClickHouse.
                rowsOut = await LoadAsync(sql, final, staging, cancellationToken);
            }

            // 3. Swap it in atomically (an empty staging partition clears a day that has no events left).
            if (rowsOut > 0)
            {
                await _serving.ExecuteAsync($"ALTER TABLE {sql.BatchTable} REPLACE PARTITION {partition} FROM {staging}", cancellationToken);
            }
            else
            {
                await _serving.ExecuteAsync($"ALTER TABLE {sql.BatchTable} DROP PARTITION {partition}", cancellationToken);
            }
        }
        finally
        {
            await _serving.ExecuteAsync($"DROP TABLE IF EXISTS {staging}", CancellationToken.None);
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        _logger.LogInformation("batch {View} {Day}: {RowsIn} events in, {RowsOut} rows out, {Elapsed}", view.Name, day, rowsIn, rowsOut, elapsed);
        return new BatchDayResult(view.Name, day, rowsIn, rowsOut, elapsed, null);
    }

    /// <summary>Sets W to the end of <paramref name="day"/> (its partition is loaded), then drops the real-time partition the batch now covers.</summary>
    private async Task<DateTime> AdvanceWatermarkAsync(ViewSql sql, DateOnly day, CancellationToken cancellationToken)
    {
        var watermark = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1);
        await _serving.ExecuteAsync($"INSERT INTO {ViewSql.WatermarkTable} (view, watermark, updatedAt) VALUES ({ViewSql.Literal(sql.View.Name)}, toDateTime({Unix(watermark)}, 'UTC'), toDateTime({Unix(_clock.GetUtcNow().UtcDateTime)}, 'UTC'))", cancellationToken);
        WatermarkMoved?.Invoke(sql.View.Name, watermark);

        // Retention, never before the batch covers it: real-time rows of a day wholly below W.
        await _serving.ExecuteAsync($"ALTER TABLE {sql.RealtimeTable} DROP PARTITION {day.ToString("yyyyMMdd", CultureInfo.InvariantCulture)}", cancellationToken);
        return watermark;
    }

    /// <summary>Called after a view's W moved (view, new W), e.g. to invalidate API caches.</summary>
    public Action<string, DateTime>? WatermarkMoved { get; set; }

    /// <summary>Loads the batch Parquet into the staging table through the serving backend's bulk insert, so a remote serving server needs no access to the files.</summary>
    private async Task<long> LoadAsync(ViewSql sql, string parquet, string staging, CancellationToken cancellationToken)
    {
        var columns = sql.BatchColumns.Select(c => new ClickHouseColumn(c.Name, c.Type)).ToArray();
        var select = string.Join(", ", sql.BatchColumns.Select(c => c.Type == "DateTime" ? $"toUnixTimestamp({ViewSql.Quote(c.Name)})" : ViewSql.Quote(c.Name)));
        await using var stream = await _engine.QueryAsync($"SELECT {select} FROM file({ViewSql.Literal(parquet)}, Parquet)", "JSONCompactEachRow", cancellationToken);
        using var reader = new StreamReader(stream);
        var rows = new List<object?[]>();
        while (await reader.ReadLineAsync(cancellationToken) is { Length: > 0 } line)
        {
            using var doc = JsonDocument.Parse(line);
            var values = doc.RootElement.EnumerateArray().ToArray();
            var row = new object?[columns.Length];
            for (var i = 0; i < columns.Length; i++)
            {
                row[i] = Convert(values[i], columns[i].Type);
            }

            rows.Add(row);
        }

        if (rows.Count > 0)
        {
            await _serving.InsertAsync(staging, columns, rows, cancellationToken);
        }

        return rows.Count;
    }

    private static object? Convert(JsonElement value, string type) => type switch
    {
        _ when value.ValueKind == JsonValueKind.Null => null,
        "DateTime" => DateTime.UnixEpoch.AddSeconds(Number(value)),
        "String" => value.GetString(),
        "UInt64" => (ulong)Number(value),
        "Float64" or "Nullable(Float64)" => value.ValueKind == JsonValueKind.String ? double.Parse(value.GetString()!.Replace("inf", "Infinity", StringComparison.Ordinal), CultureInfo.InvariantCulture) : value.GetDouble(),
        "Array(String)" => value.EnumerateArray().Select(v => v.GetString()!).ToArray(),
        "Array(UInt64)" => value.EnumerateArray().Select(v => (ulong)Number(v)).ToArray(),
        _ => throw new NotSupportedException($"batch column type {type} is not loadable"),
    };

    private static double Number(JsonElement value) =>
        value.ValueKind == JsonValueKind.String ? double.Parse(value.GetString()!, CultureInfo.InvariantCulture) : value.GetDouble();

    private static string TypeFilter(ViewDefinition view) =>
        view.EventTypes is { } types ? $" WHERE eventType IN ({string.Join(", ", types.Select(ViewSql.Literal))})" : string.Empty;

    /// <summary>
    /// Drops staging tables a killed run left behind (its <c>finally</c> never ran). Runs of one view never overlap,
    /// so every staging table of the view that exists now is an orphan.
    /// </summary>
    private async Task DropLeftoverStagingAsync(ViewSql sql, CancellationToken cancellationToken)
    {
        var prefix = sql.View.Name + "_batch_staging_";
        var database = sql.Database is { } db ? ViewSql.Literal(db) : "currentDatabase()";
        await using var stream = await _serving.QueryAsync(
            $"SELECT name FROM system.tables WHERE database = {database} AND startsWith(name, {ViewSql.Literal(prefix)})", "TabSeparated", cancellationToken);
        using var reader = new StreamReader(stream);
        var orphans = new List<string>();
        while (await reader.ReadLineAsync(cancellationToken) is { Length: > 0 } name)
        {
            orphans.Add(name);
        }

        foreach (var name in orphans)
        {
            _logger.LogWarning("batch {View}: dropping staging table {Table} left by an interrupted run", sql.View.Name, name);
            var qualified = sql.Database is { } d ? $"{ViewSql.Quote(d)}.{ViewSql.Quote(name)}" : ViewSql.Quote(name);
            await _serving.ExecuteAsync($"DROP TABLE IF EXISTS {qualified}", cancellationToken);
        }
    }

    private async Task EnsureTablesAsync(ViewSql sql, CancellationToken cancellationToken)
    {
        foreach (var statement in sql.CreateServingObjects)
        {
            await _serving.ExecuteAsync(statement, cancellationToken);
        }
    }

    /// <summary>The view's current W (1970-01-01 before the first batch).</summary>
    public async Task<DateTime> ReadWatermarkAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        var seconds = await ScalarAsync(_serving, $"SELECT toUnixTimestamp({view.WatermarkExpression})", cancellationToken);
        return DateTime.UnixEpoch.AddSeconds(seconds);
    }

    private static async Task<long> ScalarAsync(IClickHouse clickHouse, string sql, CancellationToken cancellationToken)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated", cancellationToken);
        using var reader = new StreamReader(stream);
        var text = (await reader.ReadToEndAsync(cancellationToken)).Trim();
        return text.Length == 0 ? 0 : long.Parse(text, CultureInfo.InvariantCulture);
    }

    private string StatePath(string view) => Path.Combine(_options.DataRoot, "views", view, "_state.json");

    private async Task<ViewState> ReadStateAsync(string view, CancellationToken cancellationToken)
    {
        var path = StatePath(view);
        if (!File.Exists(path))
        {
            return new ViewState(0);
        }

        return JsonSerializer.Deserialize<ViewState>(await File.ReadAllTextAsync(path, cancellationToken)) ?? new ViewState(0);
    }

    private async Task WriteStateAsync(string view, ViewState state, CancellationToken cancellationToken)
    {
        var path = StatePath(view);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, JsonSerializer.Serialize(state), cancellationToken);
        File.Move(temp, path, overwrite: true);
    }

    private static long Unix(DateTime time) => (long)(time - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>Per-view batch state: the master dataset change sequence its last full run read.</summary>
    /// <param name="Sequence">The sequence.</param>
    private sealed record ViewState(long Sequence);
}
