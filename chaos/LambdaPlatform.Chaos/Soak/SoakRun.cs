using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Scenarios;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Soak;

/// <summary>Settings of a soak run (<c>make soak</c>).</summary>
public sealed record SoakSettings
{
    /// <summary>How long events flow. Default 30 minutes.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Events per second. Default 20,000.</summary>
    public int Rate { get; init; } = 20_000;

    /// <summary>
    /// Share of events that are late (two days old: the batch recomputes their day, the merged view serves it from the
    /// batch side). Default 0.002: below 1%, so that the freshness p99 (which counts every event the speed layer flushes,
    /// late ones with their age) measures the on-time traffic.
    /// </summary>
    public double LateShare { get; init; } = 0.002;

    /// <summary>Time between batch runs. Default 5 minutes.</summary>
    public TimeSpan BatchEvery { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Time between samples of memory and freshness. Default 10 s.</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bound on the speed layer's freshness p99 in every minute. Default 5 s.</summary>
    public TimeSpan FreshnessP99Bound { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Seed of every random choice.</summary>
    public int Seed { get; init; } = Environment.TickCount & 0x7FFFFFFF;

    /// <summary>Scratch folder.</summary>
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "lambda-soak-" + Guid.NewGuid().ToString("N")[..8]);
}

/// <summary>
/// The soak: <see cref="SoakSettings.Rate"/> events a second for <see cref="SoakSettings.Duration"/> through the whole
/// platform — the dev broker (48 partitions), <c>lambda speed --http</c> into clickhouse-server, <c>lambda archive --http</c>
/// into the Parquet master dataset, and <c>lambda batch run --clickhouse</c> every <see cref="SoakSettings.BatchEvery"/>
/// (0.2% of the events are two days late, so every run recomputes that day and W moves past it). Checked:
/// <list type="bullet">
/// <item>memory is flat: the median resident set of the speed layer and of the archiver over the last quarter of the run
/// is at most 20% (or 64 MiB, whichever is more) above the median over the second quarter (the first is warm-up);</item>
/// <item>freshness holds: the speed layer's freshness p99 (event time to visible in ClickHouse, from its own histogram
/// on <c>/metrics</c>: the upper bound of the bucket holding the p99 of each 10 s sample, the worst per minute) stays
/// within <see cref="SoakSettings.FreshnessP99Bound"/> in every minute after the first (warm-up);</item>
/// <item>the end state is exact: after the traffic stops and one more batch run, every cell of both merged views equals
/// the exact answer and the master dataset (read directly) holds every event once.</item>
/// </list>
/// The figures go to a JSON report (<c>artifacts/soak.json</c>).
/// </summary>
public static class SoakRun
{
    private const int Partitions = 48;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Runs the soak, writes <paramref name="reportPath"/>, and returns whether every check held.</summary>
    public static async Task<bool> RunAsync(SoakSettings settings, string reportPath, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        Directory.CreateDirectory(settings.WorkDirectory);
        var data = Path.Combine(settings.WorkDirectory, "data");
        var logs = Path.Combine(settings.WorkDirectory, "logs");
        Directory.CreateDirectory(logs);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak: {settings.Rate:N0} events/s for {settings.Duration.TotalMinutes:F1} min ({settings.LateShare:P1} two days late), a batch run every {settings.BatchEvery.TotalMinutes:F1} min; seed {settings.Seed}; work folder {settings.WorkDirectory}"));

        using var broker = ChaosBroker.Start(Partitions);
        await using var serving = await ServingServer.StartAsync(Path.Combine(settings.WorkDirectory, "clickhouse"), cancellationToken);
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        var speedPort = OutageProbes.FreePort();
        var archivePort = OutageProbes.FreePort();
        await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString, "--http", $"127.0.0.1:{speedPort}"],
            Path.Combine(logs, "speed.log"), environment);
        await using var archiver = LambdaProcess.Start("archiver", ["archive", "--kafka", broker.BootstrapServers, "--data", data, "--max-file-age", "5", "--http", $"127.0.0.1:{archivePort}"],
            Path.Combine(logs, "archiver.log"), environment);
        var speedMetrics = new MetricsProbe(speedPort, "lambda_speed");
        var expected = new ExpectedViews(trackEventIds: false);
        using var producer = new ChaosProducer(broker.BootstrapServers, expected);
        var problems = new List<string>();
        var samples = new List<Sample>();
        var batches = new List<BatchRun>();
        var clock = Stopwatch.StartNew();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var production = Task.Factory.StartNew(() => Produce(producer, settings, stop.Token), stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var nextBatch = settings.BatchEvery;
        var nextSample = TimeSpan.Zero;
        double[]? lastBuckets = null;
        double[] bounds = [];
        while (clock.Elapsed < settings.Duration && !production.IsCompleted)
        {
            if (clock.Elapsed >= nextSample)
            {
                nextSample += settings.SampleEvery;
                var (buckets, le) = await FreshnessBucketsAsync(speedMetrics, cancellationToken);
                bounds = le.Length > 0 ? le : bounds;
                var p99 = lastBuckets is null || buckets.Length != lastBuckets.Length ? (double?)null : P99(bounds, buckets, lastBuckets);
                lastBuckets = buckets.Length > 0 ? buckets : lastBuckets;
                var sample = new Sample(
                    Math.Round(clock.Elapsed.TotalSeconds, 1),
                    Mib(OutageProbes.Memory(speed.Id).Rss),
                    Mib(OutageProbes.Memory(archiver.Id).Rss),
                    p99,
                    expected.Events,
                    (long)await speedMetrics.MetricAsync("lambda_speed_consumer_lag", cancellationToken));
                samples.Add(sample);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {sample.Seconds,7:F0}s {sample.EventsAcknowledged,12:N0} events, speed {sample.SpeedRssMiB} MiB, archiver {sample.ArchiverRssMiB} MiB, freshness p99 {(p99 is { } p ? p.ToString("F2", CultureInfo.InvariantCulture) + " s" : "-")}, lag {sample.SpeedLag:N0}"));
            }

            if (clock.Elapsed >= nextBatch)
            {
                nextBatch += settings.BatchEvery;
                batches.Add(await RunBatchAsync(data, logs, environment, clock, batches.Count + 1, cancellationToken));
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,7:F0}s batch run {batches.Count}: exit {batches[^1].Exit}, {batches[^1].Seconds:F1} s"));
            }

            foreach (var process in new[] { speed, archiver })
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{process.Name} exited on its own with code {process.ExitCode}:\n{process.Tail()}");
                }
            }

            await Task.Delay(500, cancellationToken);
        }

        await stop.CancelAsync();
        await production;
        var produced = clock.Elapsed;
        await Task.Run(() => producer.Flush(TimeSpan.FromMinutes(5)), cancellationToken);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,7:F0}s traffic stopped: {expected.Events:N0} events acknowledged ({expected.Events / produced.TotalSeconds:N0}/s), {producer.Failed} failed; waiting for both groups"));
        using (var speedProgress = new GroupProgress(broker.BootstrapServers, "speed", Topics.Events, Partitions))
        using (var archiveProgress = new GroupProgress(broker.BootstrapServers, "archive", Topics.Events, Partitions))
        {
            await speedProgress.WaitCaughtUpAsync(TimeSpan.FromMinutes(10), "speed layer (log: " + speed.LogPath + ")", cancellationToken);
            await archiveProgress.WaitCaughtUpAsync(TimeSpan.FromMinutes(10), "archiver (log: " + archiver.LogPath + ")", cancellationToken);
        }

        var final = await RunBatchAsync(data, logs, environment, clock, batches.Count + 1, cancellationToken);
        batches.Add(final);
        if (final.Exit != 0)
        {
            problems.Add($"the final batch run failed (exit {final.Exit})");
        }

        problems.AddRange(batches.Where(b => b.Exit != 0 && b != final).Select(b => $"batch run {b.Number} exited {b.Exit}"));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,7:F0}s checking every cell and the master dataset"));
        var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
        var master = await MasterDatasetCheck.CompareAsync(data, producer.ValidOffsets, cancellationToken);
        if (!view.Exact || view.EventsInView != expected.Events)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"merged views: {view.EventsInView:N0} of {expected.Events:N0} events, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsWrong} cells wrong: {string.Join("; ", view.Mismatches.Take(5))}"));
        }

        if (!master.Exact)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"master dataset: missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}: {string.Join("; ", master.Problems.Take(5))}"));
        }

        if (producer.Failed > 0)
        {
            problems.Add($"{producer.Failed} deliveries failed: {producer.LastError}");
        }

        var speedMemory = Flatness("speed", samples.Select(s => s.SpeedRssMiB).ToList(), problems);
        var archiverMemory = Flatness("archiver", samples.Select(s => s.ArchiverRssMiB).ToList(), problems);
        var minutes = PerMinute(samples);
        var worst = minutes.Where(m => m.P99 is not null).Select(m => m.P99!.Value).DefaultIfEmpty(double.NaN).Max();
        foreach (var minute in minutes.Where(m => m.Minute > 0 && m.P99 > settings.FreshnessP99Bound.TotalSeconds)) // minute 0 is warm-up
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"freshness p99 {minute.P99:F2} s in minute {minute.Minute} is above {settings.FreshnessP99Bound.TotalSeconds:F1} s"));
        }

        var report = new SoakReport(
            DateTime.UtcNow,
            settings.Seed,
            Math.Round(produced.TotalSeconds),
            settings.Rate,
            expected.Events,
            Math.Round(expected.Events / produced.TotalSeconds),
            speedMemory,
            archiverMemory,
            new FreshnessFigures(settings.FreshnessP99Bound.TotalSeconds, double.IsNaN(worst) ? null : worst, minutes),
            batches,
            new EndState(view.EventsInView, view.Lost, view.Duplicated, view.CellsCompared, view.CellsWrong, master.Rows, master.Files, master.Missing, master.Duplicated, master.Misplaced),
            samples,
            problems.Count == 0,
            problems);
        var folder = Path.GetDirectoryName(Path.GetFullPath(reportPath));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        await using (var stream = File.Create(reportPath))
        {
            await JsonSerializer.SerializeAsync(stream, report, Json, cancellationToken);
        }

        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak {(report.Passed ? "passed" : "FAILED")}: {report.EventsIn:N0} events in {report.DurationSeconds:F0} s ({report.AchievedRate:N0}/s); speed RSS {speedMemory.SecondQuarterMedianMiB} -> {speedMemory.LastQuarterMedianMiB} MiB (peak {speedMemory.PeakMiB}), archiver {archiverMemory.SecondQuarterMedianMiB} -> {archiverMemory.LastQuarterMedianMiB} MiB (peak {archiverMemory.PeakMiB}); freshness p99 worst minute {worst:F2} s; end state: {view.CellsWrong} of {view.CellsCompared:N0} cells wrong, lost {view.Lost}, duplicated {view.Duplicated}, master missing {master.Missing}, duplicated {master.Duplicated}; wrote {reportPath}"));
        foreach (var problem in problems)
        {
            log.WriteLine("  problem: " + problem);
        }

        if (report.Passed)
        {
            try
            {
                Directory.Delete(settings.WorkDirectory, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: the scratch folder is under the temp folder.
            }
        }

        return report.Passed;
    }

    private static void Produce(ChaosProducer producer, SoakSettings settings, CancellationToken stop)
    {
        var random = new Random(settings.Seed);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed });
        var lateDay = DateTime.UtcNow.Date.AddDays(-2);
        var started = Stopwatch.StartNew();
        long sent = 0;
        while (!stop.IsCancellationRequested && started.Elapsed < settings.Duration)
        {
            var due = (long)(started.Elapsed.TotalSeconds * settings.Rate);
            if (due <= sent)
            {
                Thread.Sleep(5);
                continue;
            }

            for (; sent < due && !stop.IsCancellationRequested; sent++)
            {
                var timestamp = random.NextDouble() < settings.LateShare
                    ? lateDay.AddMilliseconds(random.NextInt64(86_400_000))
                    : DateTime.UtcNow;
                producer.Send(generator.Next(timestamp));
            }
        }
    }

    private static async Task<BatchRun> RunBatchAsync(string data, string logs, IReadOnlyDictionary<string, string> environment, Stopwatch clock, int number, CancellationToken cancellationToken)
    {
        var started = clock.Elapsed;
        await using var batch = LambdaProcess.Start("batch", ["batch", "run", "--data", data], Path.Combine(logs, "batch.log"), environment);
        var exit = await batch.WaitAsync(TimeSpan.FromMinutes(20), cancellationToken);
        return new BatchRun(number, Math.Round(started.TotalSeconds), Math.Round((clock.Elapsed - started).TotalSeconds, 1), exit);
    }

    /// <summary>The cumulative freshness histogram of the speed layer: counts per upper bound (le), in bound order.</summary>
    private static async Task<(double[] Counts, double[] Bounds)> FreshnessBucketsAsync(MetricsProbe metrics, CancellationToken cancellationToken)
    {
        string text;
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            text = await http.GetStringAsync(metrics.Url, cancellationToken);
        }
        catch (HttpRequestException)
        {
            return ([], []);
        }

        var buckets = new SortedDictionary<double, double>();
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("lambda_speed_freshness_seconds_bucket{", StringComparison.Ordinal))
            {
                continue;
            }

            var le = line.IndexOf("le=\"", StringComparison.Ordinal);
            var end = line.IndexOf('"', le + 4);
            var bound = line[(le + 4)..end] == "+Inf" ? double.PositiveInfinity : double.Parse(line[(le + 4)..end], CultureInfo.InvariantCulture);
            var value = double.Parse(line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            buckets[bound] = buckets.GetValueOrDefault(bound) + value;
        }

        return ([.. buckets.Values], [.. buckets.Keys]);
    }

    /// <summary>The p99 (upper bound of the bucket holding it) of the events between two cumulative histograms; null when none.</summary>
    private static double? P99(double[] bounds, double[] now, double[] before)
    {
        var total = now[^1] - before[^1];
        if (total <= 0)
        {
            return null;
        }

        for (var i = 0; i < bounds.Length; i++)
        {
            if (now[i] - before[i] >= 0.99 * total)
            {
                return bounds[i];
            }
        }

        return double.PositiveInfinity;
    }

    private static List<MinuteFreshness> PerMinute(List<Sample> samples) =>
        [.. samples.GroupBy(s => (int)(s.Seconds / 60)).Select(g => new MinuteFreshness(g.Key, g.Where(s => s.FreshnessP99Seconds is not null).Select(s => s.FreshnessP99Seconds).Max()))];

    private static MemoryFigures Flatness(string name, List<long> rss, List<string> problems)
    {
        if (rss.Count < 8)
        {
            return new MemoryFigures(rss.DefaultIfEmpty().First(), rss.DefaultIfEmpty().Last(), rss.DefaultIfEmpty().Max(), 0, 0, true);
        }

        var quarter = rss.Count / 4;
        var second = Median(rss.Skip(quarter).Take(quarter).ToList());
        var last = Median(rss.Skip(rss.Count - quarter).ToList());
        var flat = last <= Math.Max(second * 1.2, second + 64);
        if (!flat)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"{name} memory grew: median RSS {second} MiB in the second quarter, {last} MiB in the last"));
        }

        return new MemoryFigures(rss[0], rss[^1], rss.Max(), second, last, flat);
    }

    private static long Median(List<long> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }

    private static long Mib(long bytes) => bytes / (1024 * 1024);

    private sealed record Sample(double Seconds, long SpeedRssMiB, long ArchiverRssMiB, double? FreshnessP99Seconds, long EventsAcknowledged, long SpeedLag);

    private sealed record BatchRun(int Number, double AtSeconds, double Seconds, int Exit);

    private sealed record MemoryFigures(long FirstMiB, long LastMiB, long PeakMiB, long SecondQuarterMedianMiB, long LastQuarterMedianMiB, bool Flat);

    private sealed record MinuteFreshness(int Minute, double? P99);

    private sealed record FreshnessFigures(double BoundSeconds, double? WorstMinuteP99Seconds, IReadOnlyList<MinuteFreshness> Minutes);

    private sealed record EndState(long EventsInView, long Lost, long Duplicated, long CellsCompared, long CellsWrong, long MasterRows, int MasterFiles, long MasterMissing, long MasterDuplicated, long MasterMisplaced);

    private sealed record SoakReport(DateTime FinishedAt, int Seed, double DurationSeconds, int TargetRate, long EventsIn, double AchievedRate,
        MemoryFigures Speed, MemoryFigures Archiver, FreshnessFigures Freshness, IReadOnlyList<BatchRun> BatchRuns, EndState EndState,
        IReadOnlyList<Sample> Samples, bool Passed, IReadOnlyList<string> Problems);
}
