using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving.Store;
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
/// <param name="WatermarkHeld">Why W did not move over this day when it is not below W (the day is open, an earlier day is not below W yet, or the master dataset does not hold everything the real-time side counted for it); null when W moved or was already past.</param>
/// <param name="Accuracy">The accuracy report of the day's real-time rows, made when W moved over the day and the real-time side held rows of it (<see cref="AccuracyCheck"/>); else null.</param>
public sealed record BatchDayResult(string View, DateOnly Day, long RowsIn, long RowsOut, TimeSpan Duration, DateTime? Watermark, string? WatermarkHeld = null,
    AccuracyReport? Accuracy = null);

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
/// <para>Which days: every closed day (its end plus the view's allowed lateness is past) not yet below W — so a
/// new view is backfilled over the whole history — and every day whose master files changed since the
/// view's last run (late events make a day dirty), and every closed day the real-time table holds rows of.</para>
/// <para><b>When W moves over a day d</b> (to the end of d), all of these hold, else W stays and the result, the log
/// and the metric <c>lambda.batch.watermark.held</c> say why: d is closed; no day between W and d (with master files or
/// real-time rows) is still at or above W, so W moves over consecutive days; and the master dataset holds everything
/// the real-time side counted for d — for every Kafka partition with real-time rows of d, the archiver's recorded
/// position (<see cref="Master.MasterDataset.ArchivedThrough"/>, read before the day's files were listed) is at or past the
/// highest offset of a flush that wrote rows of d (read after the day was computed). So an archiver that is down or
/// behind holds W back instead of making served events vanish. Only then are the real-time rows of d dropped.</para>
/// <para>Runs of the same view must not overlap (the scheduler runs one at a time).</para>
/// </remarks>
public sealed class BatchRecompute : IDisposable
{
    private readonly IClickHouse _engine;
    private readonly IClickHouse _serving;
    private readonly ServingStore _store;
    private readonly BatchMetrics _metrics;
    private readonly LambdaPlatform.Batch.Master.MasterDataset _master;
    private readonly BatchOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Dictionary<string, ViewSql> _views;
    private readonly AccuracyCheck _accuracy;
    private readonly SemaphoreSlim _oneRunAtATime = new(1, 1);

    /// <summary>Creates the recompute.</summary>
    /// <param name="engine">Runs the batch SQL over Parquet (chDB, or a ClickHouse that can read the files).</param>
    /// <param name="serving">Holds the serving tables (may be the same instance as <paramref name="engine"/>).</param>
    /// <param name="views">The view definitions.</param>
    /// <param name="options">Settings.</param>
    /// <param name="clock">Clock deciding which days are closed.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="metrics">Instruments to record into; default a private set.</param>
    public BatchRecompute(IClickHouse engine, IClickHouse serving, IReadOnlyList<ViewDefinition> views, BatchOptions options, TimeProvider? clock = null, ILogger<BatchRecompute>? logger = null,
        BatchMetrics? metrics = null)
    {
        _engine = engine;
        _serving = serving;
        _store = new ServingStore(serving);
        _metrics = metrics ?? new BatchMetrics();
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _master = new LambdaPlatform.Batch.Master.MasterDataset(_options.DataRoot, _clock);
        _views = views.ToDictionary(v => v.Name, v => new ViewSql(v), StringComparer.Ordinal);
        _accuracy = new AccuracyCheck(_store, _metrics.Accuracy, _clock, _logger);
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
        string? outcome = BatchMetrics.Failed;
        using var run = BatchTracing.Source.StartActivity("batch.run");
        run?.SetTag("lambda.view", view ?? "*");
        run?.SetTag("lambda.day", day?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        try
        {
            // Read before any file is listed: the files a day is computed from hold at least this much.
            var archived = _master.ArchivedThrough();
            var sequence = _master.CurrentSequence();
            var plan = new List<(ViewSql View, DateOnly Day)>();
            var candidates = new Dictionary<string, IReadOnlyList<DateOnly>>(StringComparer.Ordinal);
            foreach (var sql in view is null ? [.. _views.Values] : new[] { _views[view] })
            {
                await _store.EnsureViewAsync(sql, cancellationToken);
                await DropLeftoverStagingAsync(sql, cancellationToken);
                candidates[sql.View.Name] = [.. _master.ListDays().Union(await _store.ReadRealtimeDaysAsync(sql, cancellationToken)).Order()];
                var days = day is { } d ? [d] : await DaysToRunAsync(sql, cancellationToken);
                plan.AddRange(days.Select(x => (sql, x)));
            }

            var results = new List<BatchDayResult>();
            run?.SetTag("lambda.batch.days", plan.Count);
            for (var i = 0; i < plan.Count; i++)
            {
                var (sql, d) = plan[i];
                using var dayActivity = BatchTracing.Source.StartActivity("batch.day");
                dayActivity?.SetTag("lambda.view", sql.View.Name);
                dayActivity?.SetTag("lambda.day", d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                var result = await RunDayAsync(sql, d, cancellationToken);
                var watermark = await _store.ReadWatermarkAsync(sql, cancellationToken);
                var held = await WatermarkHeldAsync(sql, d, watermark, candidates[sql.View.Name], archived, cancellationToken);
                AccuracyReport? accuracy = null;
                if (held is null && d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1) > watermark)
                {
                    (watermark, accuracy) = await AdvanceWatermarkAsync(sql, d, cancellationToken);
                }
                else if (held is not null)
                {
                    _metrics.WatermarkHeld.Add(1, new KeyValuePair<string, object?>("view", sql.View.Name), new KeyValuePair<string, object?>("reason", held.Value.Reason));
                    _logger.Log(held.Value.Reason == BatchMetrics.DayOpen ? LogLevel.Information : LogLevel.Warning,
                        "batch {View} {Day}: W stays at {Watermark:O}: {Why}", sql.View.Name, d, watermark, held.Value.Why);
                }

                _metrics.Days.Add(1, new KeyValuePair<string, object?>("view", sql.View.Name));
                result = result with { Watermark = watermark > DateTime.UnixEpoch ? watermark : null, WatermarkHeld = held?.Why, Accuracy = accuracy };
                results.Add(result);
                dayActivity?.SetTag("lambda.batch.rows_in", result.RowsIn);
                dayActivity?.SetTag("lambda.batch.rows_out", result.RowsOut);
                dayActivity?.SetTag("lambda.batch.watermark_held", held?.Reason);

                // Pipeline state every process can read: the run, and the day's change marker (cached answers of it are stale).
                await _store.RecordBatchRunAsync(new BatchRunRecord(result.View, result.Day, result.RowsIn, result.RowsOut, result.Duration, result.Watermark,
                    result.WatermarkHeld, _clock.GetUtcNow().UtcDateTime, ServingStore.ThisInstance), cancellationToken);
                progress?.Report(new BatchProgress(i + 1, plan.Count, $"{sql.View.Name} {d:yyyy-MM-dd}"));
            }

            foreach (var sql in view is null ? [.. _views.Values] : new[] { _views[view] })
            {
                // Remember how far the master dataset was read, per view, so later changes make their days dirty.
                if (day is null)
                {
                    await WriteStateAsync(sql.View.Name, new ViewState(sequence), cancellationToken);
                }

                // Retention, never before the batch covers it: real-time rows of days wholly below W (also rows a speed
                // instance with a stale W wrote after its day was dropped).
                var w = await _store.ReadWatermarkAsync(sql, cancellationToken);
                foreach (var below in (await _store.ReadRealtimeDaysAsync(sql, cancellationToken)).Where(x => x.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1) <= w))
                {
                    await _store.DropRealtimeDayAsync(sql, below, cancellationToken);
                }
            }

            outcome = BatchMetrics.Ok;
            return results;
        }
        catch (OperationCanceledException)
        {
            outcome = null; // stopped, not failed
            throw;
        }
        finally
        {
            if (outcome is not null)
            {
                _metrics.RunFinished(view is null ? _views.Keys : [view], outcome, _clock.GetUtcNow());
            }

            if (outcome == BatchMetrics.Failed)
            {
                run?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "the batch run failed");
            }

            _oneRunAtATime.Release();
        }
    }

    /// <summary>
    /// Why W may not move over <paramref name="day"/> now, or null when it may (or when W is already past it): see the
    /// class remarks. <paramref name="days"/> are the days with master files or real-time rows.
    /// </summary>
    private async Task<(string Reason, string Why)?> WatermarkHeldAsync(ViewSql sql, DateOnly day, DateTime watermark, IReadOnlyList<DateOnly> days,
        IReadOnlyDictionary<int, long> archived, CancellationToken cancellationToken)
    {
        var start = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        if (start.AddDays(1) <= watermark)
        {
            return null;
        }

        if (!IsClosed(sql.View, day))
        {
            return (BatchMetrics.DayOpen, $"the day is open for late events until {start.AddDays(1) + sql.View.AllowedLateness:yyyy-MM-dd HH:mm}Z (allowedLateness {sql.View.AllowedLateness})");
        }

        if (days.Where(d => d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) >= watermark && d < day).Select(d => (DateOnly?)d).FirstOrDefault() is { } gap)
        {
            return (BatchMetrics.EarlierDay, $"{gap:yyyy-MM-dd}, an earlier day, is not below W yet (W moves over consecutive days)");
        }

        foreach (var (partition, counted) in (await _store.ReadRealtimePositionsAsync(sql, day, cancellationToken)).OrderBy(p => p.Key))
        {
            if (!archived.TryGetValue(partition, out var through) || through < counted)
            {
                return (BatchMetrics.ArchiveBehind,
                    $"the real-time side counted Kafka partition {partition} through offset {counted} for this day, but the master dataset holds it only "
                    + (archived.ContainsKey(partition) ? $"through offset {through}" : "not at all") + " (the archiver is down or behind)");
            }
        }

        return null;
    }

    /// <summary>The days a run would recompute for <paramref name="view"/> now, oldest first.</summary>
    public async Task<IReadOnlyList<DateOnly>> DaysToRunAsync(ViewSql view, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        var watermark = await _store.ReadWatermarkAsync(view, cancellationToken);
        var state = await ReadStateAsync(view.View.Name, cancellationToken);
        var dirty = _master.DaysChangedSince(state.Sequence).ToHashSet();
        var days = new SortedSet<DateOnly>();
        foreach (var d in _master.ListDays().Union(await _store.ReadRealtimeDaysAsync(view, cancellationToken)))
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
                using var compute = BatchTracing.Source.StartActivity("batch.compute");
                compute?.SetTag("lambda.batch.files", files.Count);
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
                compute?.Dispose();

                // 2. Into a staging table of the serving ClickHouse.
                using var load = BatchTracing.Source.StartActivity("batch.load");
                rowsOut = await LoadAsync(sql, final, staging, cancellationToken);
                load?.SetTag("lambda.batch.rows_out", rowsOut);
            }

            // 3. Swap it in atomically (an empty staging partition clears a day that has no events left).
            using var swap = BatchTracing.Source.StartActivity("batch.swap");
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

    /// <summary>
    /// Sets W to the end of <paramref name="day"/> (its partition is loaded), reports how far the day's real-time rows were
    /// from the exact ones, then drops the real-time partition the batch now covers.
    /// </summary>
    private async Task<(DateTime Watermark, AccuracyReport? Accuracy)> AdvanceWatermarkAsync(ViewSql sql, DateOnly day, CancellationToken cancellationToken)
    {
        var watermark = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1);
        using var activity = BatchTracing.Source.StartActivity("batch.watermark");
        activity?.SetTag("lambda.watermark", watermark.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        await _store.AdvanceWatermarkAsync(sql, watermark, _clock.GetUtcNow().UtcDateTime, cancellationToken);
        WatermarkMoved?.Invoke(sql.View.Name, watermark);

        // Retention, never before the batch covers it: real-time rows of a day wholly below W.
        var accuracy = await _accuracy.ReportAsync(sql, day, cancellationToken);
        await _store.DropRealtimeDayAsync(sql, day, cancellationToken);
        return (watermark, accuracy);
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

    /// <summary>The view's current W (1970-01-01 before the first batch).</summary>
    public Task<DateTime> ReadWatermarkAsync(ViewSql view, CancellationToken cancellationToken = default) => _store.ReadWatermarkAsync(view, cancellationToken);

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


    /// <summary>Per-view batch state: the master dataset change sequence its last full run read.</summary>
    /// <param name="Sequence">The sequence.</param>
    private sealed record ViewState(long Sequence);
}
