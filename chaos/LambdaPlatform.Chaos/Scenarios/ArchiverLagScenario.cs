using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The archiver down across a day's close while batch runs happen (Apache Pinot's retention bug): a split deployment
/// (<c>lambda speed</c> and <c>lambda archive</c> processes, clickhouse-server, <c>lambda batch run --clickhouse</c>)
/// receives a closed day's events in random time order; the archiver is SIGKILLed part-way. Every cell of the merged
/// views (every measure, both views, within the real-time bounds above W) must equal the exact answer at three moments — before a batch run, at every poll while one runs, and after it while the
/// archive still lags (the run must report why W did not move) — and once the archiver is back and caught up, the
/// next run moves W past the day and the merged views equal the exact answer from the batch side.
/// </summary>
public sealed class ArchiverLagScenario : IChaosScenario
{
    private const string SpeedGroup = "speed";
    private const string ArchiveGroup = "archive";

    /// <inheritdoc />
    public string Fault => "archiver down across a day's close";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        const int Partitions = 4;
        var events = settings.FaultEvents / 4;
        var random = new Random(settings.Seed);
        var data = settings.Folder("archiver-lag/data");
        var logs = settings.Folder("archiver-lag/logs");
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"archiver lag: seed {settings.Seed}, {events:N0} events of a closed day in random time order; logs in {logs}"));

        using var broker = ChaosBroker.Start(Partitions);
        await using var serving = await ServingServer.StartAsync(settings.Folder("archiver-lag/clickhouse"), cancellationToken);
        var bootstrap = broker.BootstrapServers;
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        string[] archiveArgs = ["archive", "--kafka", bootstrap, "--data", data, "--group", ArchiveGroup, "--max-file-age", "1"];
        var speed = LambdaProcess.Start("speed", ["speed", "--kafka", bootstrap, "--group", SpeedGroup, "--clickhouse", serving.ConnectionString], Path.Combine(logs, "speed.log"), environment);
        var archiver = LambdaProcess.Start("archiver", archiveArgs, Path.Combine(logs, "archiver.log"), environment);
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(bootstrap, expected);
        var clock = Stopwatch.StartNew();
        var notes = new List<string>();
        var checks = 0;
        long cellsChecked = 0;
        try
        {
            // A closed day (two days back), its events shuffled: a replay, a backfill, phones that were offline.
            var day = DateTime.UtcNow.Date.AddDays(-2);
            var generator = new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed });
            var all = Enumerable.Range(0, events).Select(_ => generator.Next(day.AddMilliseconds(random.NextInt64(86_400_000)))).ToList();
            var killAt = events * 3 / 5;
            foreach (var e in all.Take(killAt))
            {
                producer.Send(e);
            }

            producer.Flush(TimeSpan.FromMinutes(2));
            using (var archiveProgress = new GroupProgress(bootstrap, ArchiveGroup, Topics.Events, Partitions))
            {
                await archiveProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(90), "archiver (log: " + archiver.LogPath + ")", cancellationToken);
            }

            if (archiver.HasExited)
            {
                throw new InvalidOperationException($"the archiver ended on its own before its kill (exit {archiver.ExitCode}):\n{archiver.Tail()}");
            }

            await archiver.KillAsync();
            var exit = await archiver.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"archiver SIGKILLed (exit {exit}) at {clock.Elapsed.TotalSeconds:F1} s, after {killAt:N0} of {events:N0} events were archived"));
            foreach (var e in all.Skip(killAt))
            {
                producer.Send(e);
            }

            producer.Flush(TimeSpan.FromMinutes(2));
            using (var speedProgress = new GroupProgress(bootstrap, SpeedGroup, Topics.Events, Partitions))
            {
                await speedProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(90), "speed layer (log: " + speed.LogPath + ")", cancellationToken);
            }

            // Moment 1: before any batch run, every event is served (from the real-time side).
            await ExpectExactAsync("before the batch run");

            // Moment 2: while a batch run is in flight, at every poll.
            var batch = LambdaProcess.Start("batch", ["batch", "run", "--data", data], Path.Combine(logs, "batch-1.log"), environment);
            while (!batch.HasExited)
            {
                await ExpectExactAsync("while the batch run is in flight");
                await Task.Delay(50, cancellationToken);
            }

            var batchExit = await batch.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
            var output = batch.Tail(40);
            await batch.DisposeAsync();
            if (batchExit != 0)
            {
                throw new InvalidOperationException($"the batch run while the archiver lags failed (exit {batchExit}):\n{output}");
            }

            if (!output.Contains("the archiver is down or behind", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"the batch run did not say why W stays before the lagging day:\n{output}");
            }

            // Moment 3: after it, while the archive still lags: W has not moved over the day, nothing vanished.
            var watermark = await WatermarkAsync();
            if (watermark > day)
            {
                throw new InvalidOperationException($"W moved to {watermark:O} over {day:yyyy-MM-dd} although the archive lags");
            }

            await ExpectExactAsync("after the batch run, the archive lagging");
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"W stayed at {watermark:yyyy-MM-dd HH:mm} through a batch run; every cell within its bound at {checks} checks ({cellsChecked:N0} cells)"));

            // The archiver comes back and catches up; the next run moves W past the day and the answer is the batch's.
            archiver = LambdaProcess.Start("archiver", archiveArgs, Path.Combine(logs, "archiver.log"), environment);
            using (var archiveProgress = new GroupProgress(bootstrap, ArchiveGroup, Topics.Events, Partitions))
            {
                await archiveProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(90), "restarted archiver (log: " + archiver.LogPath + ")", cancellationToken);
            }

            batch = LambdaProcess.Start("batch", ["batch", "run", "--data", data], Path.Combine(logs, "batch-2.log"), environment);
            batchExit = await batch.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
            output = batch.Tail(40);
            await batch.DisposeAsync();
            if (batchExit != 0)
            {
                throw new InvalidOperationException($"the batch run after the archiver caught up failed (exit {batchExit}):\n{output}");
            }

            watermark = await WatermarkAsync();
            if (watermark < day.AddDays(1))
            {
                throw new InvalidOperationException($"W is {watermark:O}, not past {day:yyyy-MM-dd}, after the archiver caught up:\n{output}");
            }

            var sides = await MergedViewCheck.RowsAsync(serving.Client, "SELECT DISTINCT side FROM checkout_revenue", cancellationToken);
            var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
            var master = await MasterDatasetCheck.CompareAsync(data, producer.ValidOffsets, cancellationToken);
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"after the archiver caught up: W {watermark:yyyy-MM-dd HH:mm}, merged view answered by {string.Join("+", sides.Select(s => s[0]))}, {view.EventsInView:N0} events, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsCompared:N0} cells compared, {view.CellsWrong} wrong"));
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"master dataset: {master.Rows:N0} rows in {master.Files:N0} files (read directly), missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}"));
            notes.AddRange(view.Mismatches);
            notes.AddRange(master.Problems);
            var error = sides.Count != 1 || sides[0][0] != "batch" ? "after the final run the closed day is not answered by the batch side alone"
                : master.Misplaced > 0 ? $"{master.Misplaced} master dataset rows are not where their file's name and folder say" : null;
            return new FaultResult(Fault, exit == 137 ? 1 : 0, expected.Events, view.EventsInView, view.Lost + master.Missing, view.Duplicated + master.Duplicated)
            {
                Notes = notes,
                Error = error,
                CellsCompared = cellsChecked + view.CellsCompared,
                CellsWrong = view.CellsWrong,
            };
        }
        finally
        {
            await speed.DisposeAsync();
            await archiver.DisposeAsync();
        }

        async Task ExpectExactAsync(string moment)
        {
            var comparison = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
            checks++;
            cellsChecked += comparison.CellsCompared;
            if (!comparison.Exact)
            {
                throw new InvalidOperationException(
                    $"{moment}: the merged views lost {comparison.Lost} and double counted {comparison.Duplicated} events, {comparison.CellsWrong} of {comparison.CellsCompared} cells wrong: {string.Join("; ", comparison.Mismatches.Take(5))}");
            }
        }

        async Task<DateTime> WatermarkAsync()
        {
            var rows = await MergedViewCheck.RowsAsync(serving.Client, "SELECT toUnixTimestamp(max(watermark)) FROM lambda_watermarks WHERE view = 'checkout_revenue'", cancellationToken);
            return DateTime.UnixEpoch.AddSeconds(rows.Count == 0 ? 0 : long.Parse(rows[0][0], CultureInfo.InvariantCulture));
        }
    }
}
