using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// kill -9 of the speed layer, the archiver and the batch job while they have work in flight. Each runs as its own
/// <c>lambda</c> process (speed → clickhouse-server, archiver → Parquet master dataset, batch → chDB over the master
/// dataset into the server); a seeded schedule picks the victims in rounds of the three in random order and, after a
/// random pause, waits until the victim has work in flight — for speed and archiver, partitions assigned and events
/// read but not yet flushed or published (their <c>/metrics</c>); for a batch run, a day mid-load (its staging table in
/// the server, still there after the kill) — then SIGKILLs it and records what it had. Afterwards one batch run
/// completes, every cell of the merged views must equal the exact answer (within the real-time bounds above W), and
/// the master dataset must hold every valid offset exactly once (read independently).
/// </summary>
/// <remarks>
/// <para>The group coordinator's session timeout is <see cref="SessionTimeout"/> (the dev broker's default is 10 s): a
/// SIGKILLed member keeps its partitions that long, and only then does the instance started in its place get them.</para>
/// <para>Half the events are "now" (the real-time side serves them), half are in three hours two and three days back
/// (closed days: the batch recomputes them and W moves past them), so both sides of the merged views are checked.
/// Production continues at a trickle until the schedule is done, so every victim can have work in flight.</para>
/// </remarks>
public sealed class KillScenario : IChaosScenario
{
    /// <summary>Session timeout of the KIP-848 groups in this scenario.</summary>
    public static readonly TimeSpan SessionTimeout = TimeSpan.FromSeconds(3);

    /// <summary>The victims, each killed on work in flight at least twice.</summary>
    public static readonly IReadOnlyList<string> Victims = ["speed", "archiver", "batch"];

    private const string SpeedGroup = "speed";
    private const string ArchiveGroup = "archive";

    /// <summary>Longest wait for a victim to have work in flight before it is killed anyway (and counted as idle).</summary>
    private static readonly TimeSpan WorkWait = TimeSpan.FromSeconds(30);

    /// <inheritdoc />
    public string Fault => "kill -9 speed/archiver/batch";

    /// <summary>The kills of the last run (for tests).</summary>
    public KillLog? LastKills { get; private set; }

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var random = new Random(settings.Seed);
        var partitions = Math.Clamp(settings.Events / 25_000, 4, 48); // the mock keeps ~5 MiB per partition
        var data = settings.Folder("kill/data");
        var logs = settings.Folder("kill/logs");
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"kill: seed {settings.Seed}, {settings.Events:N0} events over {partitions} partitions, at least {settings.Kills} kills on work in flight; session timeout {SessionTimeout.TotalSeconds:F0} s; logs in {logs}"));

        using var broker = ChaosBroker.Start(partitions, sessionTimeout: SessionTimeout);
        await using var serving = await ServingServer.StartAsync(settings.Folder("kill/clickhouse"), cancellationToken);
        var bootstrap = broker.BootstrapServers;
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        string[] batchArgs = ["batch", "run", "--data", data];
        var kills = new KillLog(settings.Kills);
        LastKills = kills;
        var staging = new StagingProbe(serving.Client);

        (LambdaProcess Process, MetricsProbe Probe) Start(string name)
        {
            var port = OutageProbes.FreePort();
            string[] args = name == "speed"
                ? ["speed", "--kafka", bootstrap, "--group", SpeedGroup, "--clickhouse", serving.ConnectionString, "--http", $"127.0.0.1:{port}"]
                : ["archive", "--kafka", bootstrap, "--data", data, "--group", ArchiveGroup, "--max-file-age", "3", "--http", $"127.0.0.1:{port}"];
            return (LambdaProcess.Start(name, args, Path.Combine(logs, name + ".log"), environment), new MetricsProbe(port, name == "speed" ? "lambda_speed" : "lambda_archive"));
        }

        var speed = Start("speed");
        var archiver = Start("archiver");
        LambdaProcess? batch = null;
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(bootstrap, expected);
        using var stopTrickle = new CancellationTokenSource();
        var batchesFinished = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            // Paced so that events flow during the whole kill schedule (about three seconds per kill), then a trickle
            // until the schedule is done.
            var production = Task.Run(() => Produce(producer, settings, random.Next(), TimeSpan.FromSeconds(3 * settings.Kills), stopTrickle.Token, cancellationToken), cancellationToken);
            var scheduleDeadline = TimeSpan.FromSeconds(60 + (15 * settings.Kills)) + TimeSpan.FromSeconds(settings.Events / 10_000);
            var round = new Queue<string>();
            while (!Done() && clock.Elapsed < scheduleDeadline)
            {
                if (round.Count == 0)
                {
                    var order = Victims.ToArray();
                    random.Shuffle(order);
                    order.ToList().ForEach(round.Enqueue);
                }

                await Task.Delay(random.Next(300, 2_500), cancellationToken);
                var victim = round.Dequeue();
                if (victim == "batch")
                {
                    await KillBatchAsync();
                    continue;
                }

                var current = victim == "speed" ? speed : archiver;
                var work = await WaitForWorkAsync(current.Process, current.Probe, cancellationToken);
                var kill = await kills.KillAsync(victim, current.Process, clock.Elapsed, current.Probe.ReadAsync, null, cancellationToken);
                log.WriteLine("  " + kill + (work.Busy ? string.Empty : " (waited " + WorkWait.TotalSeconds.ToString("F0", CultureInfo.InvariantCulture) + " s for work)"));
                await current.Process.DisposeAsync();
                if (victim == "speed")
                {
                    speed = Start("speed");
                }
                else
                {
                    archiver = Start("archiver");
                }
            }

            await stopTrickle.CancelAsync();
            await production;
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {clock.Elapsed.TotalSeconds,6:F1}s produced {expected.Events:N0} valid events ({producer.Failed} failed deliveries); {kills.Kills.Count} kills, {kills.OnWorkInFlight} on work in flight; waiting for the speed layer and the archiver to catch up"));
            foreach (var (process, _) in new[] { speed, archiver })
            {
                if (process.HasExited)
                {
                    kills.Exited(process);
                }
            }

            var catchUp = TimeSpan.FromSeconds(60 + (settings.Events / 2_000));
            using (var speedProgress = new GroupProgress(bootstrap, SpeedGroup, Topics.Events, partitions))
            using (var archiveProgress = new GroupProgress(bootstrap, ArchiveGroup, Topics.Events, partitions))
            {
                await speedProgress.WaitCaughtUpAsync(catchUp, "speed layer (log: " + speed.Process.LogPath + ")", cancellationToken);
                await archiveProgress.WaitCaughtUpAsync(catchUp, "archiver (log: " + archiver.Process.LogPath + ")", cancellationToken);
            }

            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s caught up; the final batch run"));
            var (view, master, orphans) = await FinalCheck.RunAsync(serving, data, Path.Combine(logs, "batch.log"), environment, expected, producer.ValidOffsets, cancellationToken);
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s checked"));
            var records = kills.Kills;
            List<string> notes =
            [
                string.Create(CultureInfo.InvariantCulture,
                    $"seed {settings.Seed}: {records.Count} kills ({string.Join(", ", Victims.Select(v => $"{v} {records.Count(k => k.Victim == v)}"))}), {kills.OnWorkInFlight} on work in flight; {batchesFinished} batch runs finished before their kill"),
                .. records.Select(k => "  " + k),
                string.Create(CultureInfo.InvariantCulture, $"merged views: {view.EventsInView:N0} events, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsCompared:N0} cells compared, {view.CellsWrong} wrong"),
                string.Create(CultureInfo.InvariantCulture, $"master dataset: {master.Rows:N0} rows in {master.Files:N0} files (read directly), missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}, superseded files {master.Superseded}"),
                string.Create(CultureInfo.InvariantCulture, $"staging tables left by killed batch runs after the final run: {orphans}"),
                string.Create(CultureInfo.InvariantCulture, $"wall time {clock.Elapsed.TotalSeconds:F0} s"),
            ];
            notes.AddRange(view.Mismatches);
            notes.AddRange(master.Problems);
            var errors = new List<string>();
            if (kills.Verdict(Victims) is { } verdict)
            {
                errors.Add(verdict);
            }

            if (orphans > 0)
            {
                errors.Add($"{orphans} staging tables of killed batch runs were not cleaned up");
            }

            if (master.Misplaced > 0)
            {
                errors.Add($"{master.Misplaced} master dataset rows are not where their file's name and folder say");
            }

            return new FaultResult(Fault, records.Count(k => k.ExitCode == 137), expected.Events, view.EventsInView, view.Lost + master.Missing, view.Duplicated + master.Duplicated)
            {
                Notes = notes,
                Error = errors.Count == 0 ? null : string.Join("\n", errors),
                CellsCompared = view.CellsCompared,
                CellsWrong = view.CellsWrong,
                KillsOnWorkInFlight = kills.OnWorkInFlight,
            };
        }
        finally
        {
            await stopTrickle.CancelAsync();
            await speed.Process.DisposeAsync();
            await archiver.Process.DisposeAsync();
            if (batch is not null)
            {
                await batch.DisposeAsync();
            }
        }

        bool Done() =>
            kills.Kills.Count >= settings.Kills && kills.OnWorkInFlight >= settings.Kills
            && Victims.All(v => kills.Kills.Count(k => k.Victim == v && k.OnWorkInFlight) >= 2);

        async Task KillBatchAsync()
        {
            // A run takes a few seconds; it is killed at a random moment while one of its days is mid-load (its staging
            // table exists). One that finishes first (exit 0) is noted and another is started; any other exit fails the run.
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var before = await staging.TablesAsync(cancellationToken);
                var started = Stopwatch.StartNew();
                batch = LambdaProcess.Start("batch", batchArgs, Path.Combine(logs, "batch.log"), environment);
                // The first moment a day of this run is mid-load after a random delay (computing, loading or REPLACE PARTITION).
                var notBefore = TimeSpan.FromMilliseconds(random.Next(0, 2_500));
                var work = WorkInFlight.Unknown("not started");
                while (!batch.HasExited && started.Elapsed < TimeSpan.FromSeconds(90)
                    && !((work = await staging.ReadAsync(before, cancellationToken)).Busy && started.Elapsed >= notBefore))
                {
                    await Task.Delay(25, cancellationToken);
                }

                if (batch.HasExited)
                {
                    await batch.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
                    batchesFinished++;
                    kills.BatchFinished(batch, started.Elapsed);
                    log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s batch run finished before its kill (exit {batch.ExitCode}, {started.Elapsed.TotalSeconds:F1} s)"));
                    await batch.DisposeAsync();
                    batch = null;
                    continue;
                }

                var kill = await kills.KillAsync("batch", batch, clock.Elapsed, ct => staging.ReadAsync(before, ct), async (w, ct) =>
                {
                    // Still there after the kill: the run died between creating it and dropping it.
                    var left = (await staging.TablesAsync(ct)).Where(t => !before.Contains(t)).ToList();
                    return left.Count > 0
                        ? w with { Busy = true, What = $"{w.What}; {string.Join(", ", left)} left behind by the kill" }
                        : w with { Busy = false, What = $"{w.What}; dropped before the SIGKILL landed" };
                }, cancellationToken);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {kill} after {started.Elapsed.TotalSeconds:F1} s"));
                await batch.DisposeAsync();
                batch = null;
                return;
            }
        }
    }

    /// <summary>Polls the victim's metrics until it has work in flight, at most <see cref="WorkWait"/>; returns the last reading.</summary>
    private static async Task<WorkInFlight> WaitForWorkAsync(LambdaProcess process, MetricsProbe probe, CancellationToken cancellationToken)
    {
        var waited = Stopwatch.StartNew();
        var work = WorkInFlight.Unknown("not read");
        while (!process.HasExited && waited.Elapsed < WorkWait && !(work = await probe.ReadAsync(cancellationToken)).Busy)
        {
            await Task.Delay(100, cancellationToken);
        }

        return work;
    }

    /// <summary>
    /// Half the events now (in time order), half in three closed hours two and three days back, spread over
    /// <paramref name="duration"/>; then current events at about 200 a second until <paramref name="stopTrickle"/>.
    /// </summary>
    private static void Produce(ChaosProducer producer, ChaosSettings settings, int seed, TimeSpan duration, CancellationToken stopTrickle, CancellationToken cancellationToken)
    {
        var pace = Stopwatch.StartNew();
        var random = new Random(seed);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed });
        var now = DateTime.UtcNow;
        var today = now.Date;
        DateTime[] pastHours = [today.AddDays(-3).AddHours(10), today.AddDays(-2).AddHours(3), today.AddDays(-2).AddHours(15)];
        var recentStart = now.AddMinutes(-55);
        var recentSpan = TimeSpan.FromMinutes(50);
        for (var i = 0; i < settings.Events; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (i % 1_000 == 0 && duration * i / settings.Events - pace.Elapsed is { Ticks: > 0 } ahead)
            {
                Thread.Sleep(ahead);
            }

            var timestamp = random.Next(2) == 0
                ? pastHours[random.Next(pastHours.Length)].AddMilliseconds(random.Next(3_600_000))
                : recentStart + (recentSpan * i / settings.Events);
            producer.Send(generator.Next(timestamp));
        }

        while (!stopTrickle.IsCancellationRequested)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (var i = 0; i < 20; i++)
            {
                producer.Send(generator.Next(DateTime.UtcNow));
            }

            stopTrickle.WaitHandle.WaitOne(100);
        }

        producer.Flush(TimeSpan.FromMinutes(5));
    }
}
