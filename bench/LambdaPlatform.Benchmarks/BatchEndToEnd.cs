using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The batch layer over a master dataset of generated days (the archiver's layout and Parquet writer,
/// <c>master/events/date=…/hour=…/&lt;partition&gt;-&lt;first&gt;-&lt;last&gt;.parquet</c>, 0.1% duplicate events), cached under
/// <c>~/.cache/lambdaplatform/bench</c>:
/// <list type="bullet">
/// <item><c>batch.events_per_s</c>: one whole view-day of <c>checkout_revenue</c> through <see cref="BatchRecompute.RunAsync"/>:
/// every column computed, the batch Parquet written, the staging table loaded, the partition swapped, W moved. Events
/// are every event of the day's files (the denominator of every batch figure). Compared with its peer,
/// <c>peer.duckdb.batch.events_per_s</c> (<see cref="DuckDbBatchPeer"/>), whose rows are checked against the platform's.</item>
/// <item><c>batch.query.events_per_s</c>: the view compiler's batch SELECT alone, every column computed (inserted into an
/// <c>ENGINE = Null</c> table, so ClickHouse cannot prune a measure), against <c>batch.scan.events_per_s</c> (a scan
/// of the same files' columns).</item>
/// <item><c>batch.days_N.seconds</c> (N = 1, 2, 4): one scheduled run (<see cref="BatchRecompute.RunAsync"/> with no day)
/// over a dataset of N equal days, compared with <c>batch.days_1.seconds</c> (linear: ratio N).</item>
/// </list>
/// </summary>
internal sealed class BatchEndToEnd(ChDbClickHouse clickHouse, EventSchemaRegistry schemas, BenchSettings settings)
{
    // The cached dataset's shape: bump it when the generator's events or the layout change (v3: canonical checkouts with line items).
    private const string DatasetVersion = "v3";
    private const int Partitions = 4;
    private const int DuplicateEvery = 1000;
    private static readonly DateOnly FirstDay = new(2026, 10, 1);

    public async Task<List<BenchFigure>> RunAsync()
    {
        var days = settings.Runs("scaling") ? settings.BatchMaxDays : 1;
        var cache = await EnsureDatasetAsync(days);
        var figures = new List<BenchFigure>();
        if (settings.Runs("batch"))
        {
            figures.AddRange(await DayFiguresAsync(cache));
        }

        if (settings.Runs("scaling"))
        {
            figures.AddRange(await ScalingFiguresAsync(cache, days));
        }

        return figures;
    }

    private long EventsPerDay => settings.BatchEventsPerDay;

    private async Task<List<BenchFigure>> DayFiguresAsync(MasterDataset cache)
    {
        var glob = cache.DayGlob(FirstDay);
        var view = CheckoutRevenue();
        var rows = await ScalarsAsync($"SELECT count() FROM file({ViewSql.Literal(glob)}, Parquet)");
        if (rows[0] != EventsPerDay)
        {
            throw new InvalidOperationException($"the cached day {FirstDay} holds {rows[0]:N0} events, not {EventsPerDay:N0}: delete {cache.Root}");
        }

        const string NullTable = "bench_batch_null";
        var viewSql = new ViewSql(view);
        await clickHouse.ExecuteAsync($"DROP TABLE IF EXISTS {NullTable}");
        await clickHouse.ExecuteAsync($"CREATE TABLE {NullTable} ({string.Join(", ", viewSql.BatchColumns.Select(c => $"{ViewSql.Quote(c.Name)} {(c.Type == "DateTime" ? "DateTime('UTC')" : c.Type)}"))}) ENGINE = Null");
        var scanSql = $"SELECT count(), sum(length(eventType)), sum(length(userId)), sum(length(payload)), max(timestamp), uniqCombined(eventId) FROM file({ViewSql.Literal(glob)}, Parquet)";
        var querySql = $"INSERT INTO {NullTable} {viewSql.BatchSelect(glob)}";

        var work = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-duckdb-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        List<double> scan = [], query = [], batch = [], duck = [];
        List<ViewDayRow> platformRows = [];
        var duckOutput = string.Empty;
        try
        {
            for (var r = 0; r < settings.Repeats; r++)
            {
                scan.Add(EventsPerDay / await TimeAsync(scanSql));
                query.Add(EventsPerDay / await TimeAsync(querySql));

                var (seconds, loaded) = await RecomputeAsync(cache, [FirstDay], oneDay: true, readRows: r == settings.Repeats - 1);
                batch.Add(EventsPerDay / seconds);
                platformRows = loaded ?? platformRows;

                duckOutput = Path.Combine(work, $"checkout_revenue-{r}.parquet");
                duck.Add(EventsPerDay / DuckDbBatchPeer.Run(glob, duckOutput).TotalSeconds);
                Harness.Log($"run {r + 1}: scan {scan[^1]:N0}/s, query {query[^1]:N0}/s, batch view-day {batch[^1]:N0}/s, DuckDB {duck[^1]:N0}/s over {EventsPerDay:N0} events");
            }

            var warning = Compare(platformRows, DuckDbBatchPeer.ReadRows(duckOutput), glob);
            var scanFigure = new BenchFigure("batch.scan.events_per_s", Harness.Median(scan), "events/s");
            var peerFigure = new BenchFigure("peer.duckdb.batch.events_per_s", Harness.Median(duck), "events/s").WarnedThat(warning);
            return
            [
                scanFigure,
                new BenchFigure("batch.query.events_per_s", Harness.Median(query), "events/s").ComparedWith(scanFigure),
                peerFigure,
                new BenchFigure("batch.events_per_s", Harness.Median(batch), "events/s").ComparedWith(peerFigure).WarnedThat(warning),
            ];
        }
        finally
        {
            Harness.DeleteFolder(work);
            await clickHouse.ExecuteAsync($"DROP TABLE IF EXISTS {NullTable}");
        }
    }

    private async Task<List<BenchFigure>> ScalingFiguresAsync(MasterDataset cache, int maxDays)
    {
        var figures = new List<BenchFigure>();
        BenchFigure? one = null;
        var line = new List<string>();
        for (var n = 1; n <= maxDays; n *= 2)
        {
            var days = Enumerable.Range(0, n).Select(FirstDay.AddDays).ToArray();
            var seconds = new List<double>();
            for (var r = 0; r < settings.Repeats; r++)
            {
                seconds.Add((await RecomputeAsync(cache, days, oneDay: false, readRows: false)).Seconds);
                Harness.Log($"scaling run {r + 1}: {n} day(s) of {EventsPerDay:N0} events in {seconds[^1]:0.00} s");
            }

            var figure = new BenchFigure($"batch.days_{n}.seconds", Harness.Median(seconds), "s");
            one ??= figure;
            figures.Add(n == 1 ? figure : figure.ComparedWith(one));
            line.Add(string.Create(CultureInfo.InvariantCulture, $"{n} day(s) {figure.Value:0.00} s = {figure.Value / n:0.00} s/day"));
        }

        var perDay = figures.Select((f, i) => f.Value / (1 << i)).ToList();
        var spread = perDay.Max() / perDay.Min();
        Harness.Log($"batch scaling: {string.Join("; ", line)}: {(spread <= 1.15 ? "linear" : "not linear")} (seconds per day vary by a factor {spread:0.00})");
        return figures;
    }

    /// <summary>
    /// Times one batch run over a fresh copy of the serving state: a temporary data root whose <c>master/events/date=…</c>
    /// folders link to the cached days, a view name of its own (new tables, W at zero). <paramref name="oneDay"/>: run that
    /// one day explicitly (<c>RunAsync(view, day)</c>); otherwise the scheduled form (<c>RunAsync(view)</c>, every closed day).
    /// </summary>
    private async Task<(double Seconds, List<ViewDayRow>? Rows)> RecomputeAsync(MasterDataset cache, DateOnly[] days, bool oneDay, bool readRows)
    {
        var root = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-batch-" + Guid.NewGuid().ToString("N"));
        var events = Path.Combine(root, "master", "events");
        Directory.CreateDirectory(events);
        foreach (var d in days)
        {
            Directory.CreateSymbolicLink(Path.Combine(events, Path.GetFileName(cache.DayPath(d))), cache.DayPath(d));
        }

        var view = CheckoutRevenue() with { Name = "checkout_revenue_" + Guid.NewGuid().ToString("N")[..8] };
        var sql = new ViewSql(view);
        var clock = new FixedClock(FirstDay.AddDays(60).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));
        try
        {
            using var recompute = new BatchRecompute(clickHouse, clickHouse, [view], new BatchOptions { DataRoot = root }, clock);
            var stopwatch = Stopwatch.StartNew();
            var results = oneDay ? await recompute.RunAsync(view.Name, days[0]) : await recompute.RunAsync(view.Name);
            var seconds = stopwatch.Elapsed.TotalSeconds;
            if (results.Count != days.Length || results.Any(x => x.RowsOut == 0))
            {
                throw new InvalidOperationException($"the batch run computed {results.Count} days ({string.Join(", ", results.Select(x => $"{x.Day}: {x.RowsOut} rows"))}), not {days.Length}");
            }

            return (seconds, readRows ? await PlatformRowsAsync(sql, days[0]) : null);
        }
        finally
        {
            await clickHouse.ExecuteAsync($"DROP VIEW IF EXISTS {sql.MergedView}");
            await clickHouse.ExecuteAsync($"DROP TABLE IF EXISTS {sql.RealtimeTable}");
            await clickHouse.ExecuteAsync($"DROP TABLE IF EXISTS {sql.BatchTable}");
            Harness.DeleteFolder(root);
        }
    }

    private async Task<List<ViewDayRow>> PlatformRowsAsync(ViewSql sql, DateOnly day)
    {
        await using var stream = await clickHouse.QueryAsync(
            $"SELECT toUnixTimestamp(bucket), store, orders, revenue, buyers, p99_cart FROM {sql.BatchTable} WHERE toDate(bucket) = toDate('{day:yyyy-MM-dd}') ORDER BY bucket, store",
            "TabSeparated");
        using var reader = new StreamReader(stream);
        var rows = new List<ViewDayRow>();
        while (await reader.ReadLineAsync() is { Length: > 0 } line)
        {
            var f = line.Split('\t');
            rows.Add(new ViewDayRow(long.Parse(f[0], CultureInfo.InvariantCulture), f[1], long.Parse(f[2], CultureInfo.InvariantCulture),
                Double(f[3]), long.Parse(f[4], CultureInfo.InvariantCulture), Double(f[5])));
        }

        return rows;
    }

    /// <summary>
    /// The DuckDB peer's rows against the platform's (same bucket and store; count, distinct and quantile equal; sums
    /// equal up to summation order, 1e-9 relative). Returns null when they agree, else a warning (also printed loudly).
    /// </summary>
    private static string? Compare(List<ViewDayRow> platform, List<ViewDayRow> duck, string glob)
    {
        // First the peer itself: quantile_disc must be the ⌈q·n⌉-th value, or it is not computing the view.
        var explicitRank = DuckDbBatchPeer.ComputeWithRank(glob, DuckDbBatchPeer.NearestRank);
        var peerRule = duck.Zip(explicitRank).Count(x => x.First.Bucket == x.Second.Bucket && x.First.Store == x.Second.Store && x.First.P99Cart.Equals(x.Second.P99Cart));
        if (peerRule != duck.Count || explicitRank.Count != duck.Count)
        {
            var problem = $"DuckDB's quantile_disc gave the ⌈q·n⌉-th value in only {peerRule:N0} of {duck.Count:N0} rows: the peer does not compute the view's quantile";
            Harness.Warn(problem);
            return problem;
        }

        var ours = platform.ToDictionary(r => (r.Bucket, r.Store));
        var theirs = duck.ToDictionary(r => (r.Bucket, r.Store));
        var missing = theirs.Keys.Count(k => !ours.ContainsKey(k));
        var extra = ours.Keys.Count(k => !theirs.ContainsKey(k));
        int orders = 0, revenue = 0, buyers = 0, quantile = 0;
        var examples = new List<string>();
        foreach (var (key, p) in ours)
        {
            if (!theirs.TryGetValue(key, out var d))
            {
                continue;
            }

            var bad = new List<string>();
            if (p.Orders != d.Orders)
            {
                orders++;
                bad.Add($"count {p.Orders} vs {d.Orders}");
            }

            if (Math.Abs(p.Revenue - d.Revenue) > 1e-9 * Math.Max(1, Math.Abs(d.Revenue)))
            {
                revenue++;
                bad.Add($"sum {p.Revenue:R} vs {d.Revenue:R}");
            }

            if (p.Buyers != d.Buyers)
            {
                buyers++;
                bad.Add($"distinct {p.Buyers} vs {d.Buyers}");
            }

            if (!p.P99Cart.Equals(d.P99Cart))
            {
                quantile++;
                bad.Add($"p99 {p.P99Cart:R} vs {d.P99Cart:R}");
            }

            if (bad.Count > 0 && examples.Count < 3)
            {
                examples.Add($"{DateTime.UnixEpoch.AddSeconds(key.Bucket):yyyy-MM-dd HH:mm} {key.Store}: {string.Join(", ", bad)} (platform vs DuckDB)");
            }
        }

        if (missing == 0 && extra == 0 && orders + revenue + buyers + quantile == 0)
        {
            Harness.Log($"check: the DuckDB peer's {duck.Count:N0} rows equal the platform's batch rows (count, sum, distinct, p99 per minute and store; DuckDB's p99 is the ⌈q·n⌉-th value in every row)");
            return null;
        }

        var summary = $"the DuckDB peer and the platform's batch differ on the same view-day ({platform.Count:N0} platform rows, {duck.Count:N0} DuckDB rows): " +
            $"{missing} rows only in DuckDB, {extra} only in the platform; differing count {orders}, sum {revenue}, distinct {buyers}, p99 {quantile}";
        if (quantile > 0)
        {
            // Which rank rule does the platform's quantile follow? (DESIGN: the nearest rank, ⌈q·n⌉.)
            var floorRule = DuckDbBatchPeer.ComputeWithRank(glob, DuckDbBatchPeer.FloorRank).ToDictionary(r => (r.Bucket, r.Store));
            var followsFloor = ours.Count(kv => floorRule.TryGetValue(kv.Key, out var f) && f.P99Cart.Equals(kv.Value.P99Cart));
            summary += $"; the platform's p99 equals the value of rank ⌊q·(n−1)⌋+1 in {followsFloor:N0} of {ours.Count:N0} rows (DuckDB uses the nearest rank ⌈q·n⌉, as DESIGN.md says)";
        }

        Harness.Warn(summary + Environment.NewLine + "!!   e.g. " + string.Join(Environment.NewLine + "!!   e.g. ", examples));
        return summary;
    }

    /// <summary>
    /// The cached dataset with at least <paramref name="days"/> days of <see cref="EventsPerDay"/> events from <see cref="FirstDay"/>,
    /// each generated once (days in parallel) and marked complete.
    /// </summary>
    private async Task<MasterDataset> EnsureDatasetAsync(int days)
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "lambdaplatform", "bench",
            $"master-{DatasetVersion}-{EventsPerDay}");
        var dataset = new MasterDataset(root);
        var marks = Path.Combine(root, "complete");
        Directory.CreateDirectory(marks);
        var missing = Enumerable.Range(0, days).Select(FirstDay.AddDays).Where(d => !File.Exists(Path.Combine(marks, $"{d:yyyy-MM-dd}"))).ToList();
        if (missing.Count == 0)
        {
            return dataset;
        }

        Harness.Log($"generating {missing.Count} day(s) of {EventsPerDay:N0} master-dataset events under {root} (once)");
        await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, async (day, ct) =>
        {
            Harness.DeleteFolder(dataset.DayPath(day));
            await GenerateDayAsync(dataset, day, ct);
            await File.WriteAllTextAsync(Path.Combine(marks, $"{day:yyyy-MM-dd}"), DatasetVersion, ct);
            Harness.Log($"generated {day:yyyy-MM-dd}");
        });
        return dataset;
    }

    /// <summary>
    /// One day as the archiver would have written it from a 4-partition topic: per hour and partition one file named by
    /// its offset range. Every 1000th record repeats the previous event (same eventId), as a re-delivery would.
    /// </summary>
    private async Task GenerateDayAsync(MasterDataset dataset, DateOnly day, CancellationToken cancellationToken)
    {
        var start = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        var decoder = new EventDecoder(schemas, new EventDecoderOptions { Clock = new FixedClock(start.AddDays(5)) });
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 2026 + day.DayNumber });
        var offsets = new long[Partitions];
        var buffers = Enumerable.Range(0, Partitions).Select(_ => new MasterEventBuffer((int)(EventsPerDay / 24 / Partitions) + 16)).ToArray();
        DecodedEvent? previous = null;
        long index = 0;
        for (var hour = 0; hour < 24; hour++)
        {
            var perHour = (EventsPerDay * (hour + 1) / 24) - (EventsPerDay * hour / 24);
            var hourStart = start.AddHours(hour);
            foreach (var b in buffers)
            {
                b.Clear();
            }

            for (long i = 0; i < perHour; i++, index++)
            {
                DecodedEvent e;
                if (index % DuplicateEvery == DuplicateEvery - 1 && previous is not null)
                {
                    e = previous;
                }
                else
                {
                    var generated = generator.Next(hourStart.AddTicks(TimeSpan.TicksPerHour * i / perHour));
                    e = decoder.TryDecode(generated.Json, out var decoded, out var violation)
                        ? decoded!
                        : throw new InvalidOperationException($"generated event is invalid: {violation}");
                }

                var p = (int)(index % Partitions);
                buffers[p].Add(e, p, offsets[p]++);
                previous = e;
            }

            var folder = dataset.HourPath(new HourKey(day, hour));
            Directory.CreateDirectory(folder);
            for (var p = 0; p < Partitions; p++)
            {
                var b = buffers[p];
                if (b.Count == 0)
                {
                    continue;
                }

                var final = dataset.FilePath(new HourKey(day, hour), p, new OffsetRange(b.MinOffset, b.MaxOffset));
                var temp = Path.Combine(folder, "." + Path.GetFileName(final) + ".tmp");
                File.Delete(temp);
                await MasterParquet.WriteFileAsync(b, temp, MasterCompression.Zstd, cancellationToken);
                File.Move(temp, final, overwrite: true);
            }
        }
    }

    private ViewDefinition CheckoutRevenue() =>
        ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), schemas).Single(v => v.Name == "checkout_revenue");

    private async Task<double> TimeAsync(string sql)
    {
        var stopwatch = Stopwatch.StartNew();
        await using (var stream = await clickHouse.QueryAsync(sql, "TabSeparated"))
        {
            await stream.CopyToAsync(Stream.Null);
        }

        return stopwatch.Elapsed.TotalSeconds;
    }

    private async Task<long[]> ScalarsAsync(string sql)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return [.. (await reader.ReadToEndAsync()).Trim().Split('\t').Select(s => long.Parse(s, CultureInfo.InvariantCulture))];
    }

    private static double Double(string text) => text switch
    {
        "inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        "nan" => double.NaN,
        _ => double.Parse(text, CultureInfo.InvariantCulture),
    };

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
