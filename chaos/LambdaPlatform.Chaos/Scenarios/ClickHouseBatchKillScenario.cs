using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// clickhouse-server SIGKILLed while a batch run loads a day, then started again. A split deployment (<c>lambda
/// speed</c>, <c>lambda archive</c>, clickhouse-server) holds two closed days and some current events; then, again and
/// again, <c>lambda batch run --clickhouse</c> recomputes one of the closed days and the server is killed while that
/// day is mid-load — alternately as soon as the run's staging table appears (computing or loading it) and once the
/// staging table is loaded (<c>REPLACE PARTITION</c> next or under way). A staging table still there after the restart
/// proves the kill landed mid-load; the injected count is the kills sent while the run had a staging table and after
/// which the run failed. Checked after each restart, before any other run: every cell of
/// the merged views equals the exact answer (the swap is atomic: a day is the old one or the new one, never half);
/// the batch run exits non-zero with a message (not a hang, not success); the speed layer rides out the outage. At
/// the end a clean run completes, every cell is exact, the master dataset holds every valid event once, and the
/// leftover staging tables are gone.
/// </summary>
public sealed class ClickHouseBatchKillScenario : IChaosScenario
{
    private const int Partitions = 4;

    /// <inheritdoc />
    public string Fault => "clickhouse: server killed during a batch load";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var kills = settings.Events >= 1_000_000 ? 4 : 2;
        var events = settings.FaultEvents / 2;
        var data = settings.Folder("clickhouse-batch-kill/data");
        var logs = settings.Folder("clickhouse-batch-kill/logs");
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"clickhouse killed during a batch load: seed {settings.Seed}, {events:N0} events, {kills} kills; logs in {logs}"));
        using var broker = ChaosBroker.Start(Partitions);
        await using var serving = await ServingServer.StartAsync(settings.Folder("clickhouse-batch-kill/clickhouse"), cancellationToken);
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString], Path.Combine(logs, "speed.log"), environment);
        await using var archiver = LambdaProcess.Start("archiver", ["archive", "--kafka", broker.BootstrapServers, "--data", data, "--max-file-age", "1"], Path.Combine(logs, "archiver.log"), environment);
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(broker.BootstrapServers, expected);
        var staging = new StagingProbe(serving.Client);
        var clock = Stopwatch.StartNew();
        var random = new Random(settings.Seed);
        var notes = new List<string>();
        var errors = new List<string>();

        // Two closed days (two and three days back) and current events.
        var today = DateTime.UtcNow.Date;
        DateOnly[] days = [DateOnly.FromDateTime(today.AddDays(-3)), DateOnly.FromDateTime(today.AddDays(-2))];
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed });
        for (var i = 0; i < events; i++)
        {
            var timestamp = (i % 5) switch
            {
                4 => DateTime.UtcNow.AddMinutes(-random.Next(0, 50)),
                var k => days[k % 2].ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddMilliseconds(random.NextInt64(86_400_000)),
            };
            producer.Send(generator.Next(timestamp));
        }

        await Task.Run(() => producer.Flush(TimeSpan.FromMinutes(2)), cancellationToken);
        await WaitCaughtUpAsync();
        long cellsCompared = 0, cellsWrong = 0;
        var landed = 0;
        for (var attempt = 0; attempt < kills; attempt++)
        {
            // A recompute of one closed day: an explicit day is recomputed even when it is not dirty.
            var day = days[attempt % 2];
            // Odd attempts aim at the swap: they wait for a loaded staging table (polled back to back: the swap and the drop
            // follow the load within milliseconds); a run that finishes unseen is retried, and after four the next one is
            // killed as soon as its staging table appears.
            var waitForLoaded = attempt % 2 == 1;
            var before = await staging.TablesAsync(cancellationToken);
            LambdaProcess? batch = null;
            var work = WorkInFlight.Unknown("not started");
            for (var run = 0; run < 5; run++)
            {
                var aimAtSwap = waitForLoaded && run < 4;
                before = await staging.TablesAsync(cancellationToken);
                batch = LambdaProcess.Start("batch", ["batch", "run", "--data", data, "--day", day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)],
                    Path.Combine(logs, $"batch-{attempt + 1}.log"), environment);
                var started = Stopwatch.StartNew();
                while (!batch.HasExited && started.Elapsed < TimeSpan.FromSeconds(120))
                {
                    work = await staging.ReadAsync(before, cancellationToken);
                    if (work.Busy && (!aimAtSwap || work.Buffered > 0))
                    {
                        break;
                    }

                    if (!work.Busy || !aimAtSwap)
                    {
                        await Task.Delay(20, cancellationToken);
                    }
                }

                if (!batch.HasExited)
                {
                    break;
                }

                var exited = batch.ExitCode;
                await batch.DisposeAsync();
                batch = null;
                if (exited != 0)
                {
                    errors.Add($"batch run {attempt + 1} for {day:yyyy-MM-dd} failed on its own (exit {exited})");
                    break;
                }

                notes.Add(string.Create(CultureInfo.InvariantCulture, $"a run for {day:yyyy-MM-dd} finished before a loaded staging table was seen; another is started"));
            }

            if (batch is null || !work.Busy)
            {
                errors.Add($"batch run {attempt + 1} for {day:yyyy-MM-dd} never had a day mid-load to kill the server under");
                if (batch is not null)
                {
                    await batch.DisposeAsync();
                }

                continue;
            }

            await serving.StopAsync(); // SIGKILL
            var killedAt = clock.Elapsed;
            var exit = await batch.WaitAsync(TimeSpan.FromSeconds(120), cancellationToken);
            var tail = batch.Tail(3).Trim().Split('\n').LastOrDefault() ?? string.Empty;
            await batch.DisposeAsync();
            await serving.StartAgainAsync(cancellationToken);
            var left = (await staging.TablesAsync(cancellationToken)).Where(t => !before.Contains(t)).ToList();
            var midLoad = left.Count > 0;
            landed += exit != 0 ? 1 : 0;
            var found = midLoad ? $"its staging table {string.Join(", ", left)} was still there (killed mid-load)"
                : "no staging table of it was left (the kill met REPLACE PARTITION or the DROP after it: the swap and drop take milliseconds once the staging table is loaded)";
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"{killedAt.TotalSeconds,6:F1}s clickhouse-server SIGKILLed during the run for {day:yyyy-MM-dd} ({work.What}); the run exited {exit}: {tail}; after the restart {found}"));
            if (exit == 0)
            {
                errors.Add($"batch run {attempt + 1} exited 0 although its ClickHouse server was killed under it");
            }

            // Nothing half-swapped: the day is the old one or the new one, and the merged views are exact.
            var afterRestart = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
            cellsCompared += afterRestart.CellsCompared;
            cellsWrong += afterRestart.CellsWrong;
            if (!afterRestart.Exact)
            {
                errors.Add($"after the restart following kill {attempt + 1}: lost {afterRestart.Lost}, duplicated {afterRestart.Duplicated}, {afterRestart.CellsWrong} cells wrong: {string.Join("; ", afterRestart.Mismatches.Take(5))}");
            }
        }

        // The speed layer rode out the outages; a clean run makes every day exact and drops the leftovers.
        await WaitCaughtUpAsync();
        var (view, master, orphans) = await FinalCheck.RunAsync(serving, data, Path.Combine(logs, "batch-final.log"), environment, expected, producer.ValidOffsets, cancellationToken);
        var sides = (await MergedViewCheck.RowsAsync(serving.Client, "SELECT side, count() FROM checkout_revenue GROUP BY side ORDER BY side", cancellationToken)).Select(r => $"{r[0]} {r[1]} rows");
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"after a clean run: {view.EventsInView:N0} events ({string.Join(", ", sides)} in checkout_revenue), lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsWrong} of {view.CellsCompared:N0} cells wrong; {orphans} staging tables left"));
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"master dataset: {master.Rows:N0} rows in {master.Files} files (read directly), missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}"));
        notes.AddRange(view.Mismatches);
        notes.AddRange(master.Problems);
        if (orphans > 0)
        {
            errors.Add($"{orphans} staging tables left after a clean run");
        }

        if (landed < kills)
        {
            errors.Add($"only {landed} of {kills} server kills landed while a batch run had a day mid-load (the others found no day mid-load or left the run succeeding)");
        }

        foreach (var process in new[] { speed, archiver })
        {
            if (process.HasExited)
            {
                errors.Add($"{process.Name} exited on its own with code {process.ExitCode}:\n{process.Tail()}");
            }
        }

        notes.Add(string.Create(CultureInfo.InvariantCulture, $"wall time {clock.Elapsed.TotalSeconds:F0} s"));
        return new FaultResult(Fault, landed, expected.Events, view.EventsInView, view.Lost + master.Missing, view.Duplicated + master.Duplicated)
        {
            Notes = notes,
            Error = errors.Count == 0 ? null : string.Join("\n", errors),
            CellsCompared = cellsCompared + view.CellsCompared,
            CellsWrong = cellsWrong + view.CellsWrong,
        };

        async Task WaitCaughtUpAsync()
        {
            using var speedProgress = new GroupProgress(broker.BootstrapServers, "speed", Topics.Events, Partitions);
            using var archiveProgress = new GroupProgress(broker.BootstrapServers, "archive", Topics.Events, Partitions);
            await speedProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(120), "speed layer (log: " + speed.LogPath + ")", cancellationToken);
            await archiveProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(120), "archiver (log: " + archiver.LogPath + ")", cancellationToken);
        }
    }
}
