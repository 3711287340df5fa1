using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// kill -9 of the speed layer, the archiver and the batch job at random points while events flow. Each runs as
/// its own <c>lambda</c> process (speed → clickhouse-server, archiver → Parquet master dataset, batch → chDB over
/// the master dataset into the server); a seeded random schedule SIGKILLs one of them every few hundred
/// milliseconds to seconds and restarts it. Afterwards one batch run completes, and then every merged bucket must
/// equal the exact answer and the master dataset must hold every valid event exactly once per offset.
/// </summary>
/// <remarks>
/// Half the events are "now" (the speed layer's real-time side serves them), half are in three hours two and three
/// days back (closed days: the batch recomputes them and W moves past them), so both sides of the merged view are
/// checked after the kills.
/// </remarks>
public sealed class KillScenario : IChaosScenario
{
    private const string SpeedGroup = "speed";
    private const string ArchiveGroup = "archive";

    /// <inheritdoc />
    public string Fault => "kill -9 speed/archiver/batch";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var random = new Random(settings.Seed);
        var partitions = Math.Clamp(settings.Events / 25_000, 4, 48); // the mock keeps ~5 MiB per partition
        var data = settings.Folder("kill/data");
        var logs = settings.Folder("kill/logs");
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kill: seed {settings.Seed}, {settings.Events:N0} events over {partitions} partitions, at least {settings.Kills} kills; logs in {logs}"));

        using var broker = ChaosBroker.Start(partitions);
        await using var serving = await ServingServer.StartAsync(settings.Folder("kill/clickhouse"), cancellationToken);
        var bootstrap = broker.BootstrapServers;
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        string[] speedArgs = ["speed", "--kafka", bootstrap, "--group", SpeedGroup];
        string[] archiveArgs = ["archive", "--kafka", bootstrap, "--data", data, "--group", ArchiveGroup, "--max-file-age", "3"];
        string[] batchArgs = ["batch", "run", "--data", data];
        LambdaProcess Start(string name, string[] args) => LambdaProcess.Start(name, args.Concat(name == "speed" ? ["--clickhouse", serving.ConnectionString] : []), Path.Combine(logs, name + ".log"), environment);

        var speed = Start("speed", speedArgs);
        var archiver = Start("archiver", archiveArgs);
        LambdaProcess? batch = null;
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(bootstrap, expected);
        var kills = new Dictionary<string, int> { ["speed"] = 0, ["archiver"] = 0, ["batch"] = 0 };
        var batchesFinished = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            // Paced so that events flow during the whole kill schedule (about two seconds per kill).
            var production = Task.Run(() => Produce(producer, settings, random.Next(), TimeSpan.FromSeconds(2 * settings.Kills), cancellationToken), cancellationToken);

            // The kill schedule: rounds of the three victims in a random order, until the last event is produced and
            // the required kills are done (so each is killed about a third of the times, at least twice).
            var round = new Queue<string>();
            while (kills.Values.Sum() < settings.Kills || !production.IsCompleted)
            {
                if (round.Count == 0)
                {
                    string[] order = ["speed", "archiver", "batch"];
                    random.Shuffle(order);
                    order.ToList().ForEach(round.Enqueue);
                }

                await Task.Delay(random.Next(300, 2_500), cancellationToken);
                switch (round.Dequeue())
                {
                    case "speed":
                        await speed.KillAsync();
                        kills["speed"]++;
                        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s kill -9 speed (pid {speed.Id}), restart"));
                        await speed.DisposeAsync();
                        speed = Start("speed", speedArgs);
                        break;
                    case "archiver":
                        await archiver.KillAsync();
                        kills["archiver"]++;
                        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s kill -9 archiver (pid {archiver.Id}), restart"));
                        await archiver.DisposeAsync();
                        archiver = Start("archiver", archiveArgs);
                        break;
                    default:
                        // A run takes a few seconds: some die starting, some mid-write. One that finishes first is noted and
                        // another is started and killed within the time the finished one took.
                        var longest = TimeSpan.FromSeconds(9);
                        for (var attempt = 0; attempt < 3 && batch is null; attempt++)
                        {
                            var started = Stopwatch.StartNew();
                            batch = Start("batch", batchArgs);
                            await Task.Delay(random.Next(300, Math.Max(400, (int)longest.TotalMilliseconds)), cancellationToken);
                            if (batch.HasExited)
                            {
                                await batch.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
                                longest = started.Elapsed;
                                batchesFinished++;
                                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s batch run finished before its kill (exit {batch.ExitCode}, {longest.TotalSeconds:F1} s)"));
                                await batch.DisposeAsync();
                                batch = null;
                                continue;
                            }

                            await batch.KillAsync();
                            kills["batch"]++;
                            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s kill -9 batch run (pid {batch.Id}) after {started.Elapsed.TotalSeconds:F1} s"));
                        }

                        if (batch is not null)
                        {
                            await batch.DisposeAsync();
                            batch = null;
                        }

                        break;
                }
            }

            await production;
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s produced {expected.Events:N0} valid events ({producer.Failed} failed deliveries); waiting for the speed layer and the archiver to catch up"));
            var catchUp = TimeSpan.FromSeconds(60 + (settings.Events / 2_000));
            using (var speedProgress = new GroupProgress(bootstrap, SpeedGroup, Topics.Events, partitions))
            using (var archiveProgress = new GroupProgress(bootstrap, ArchiveGroup, Topics.Events, partitions))
            {
                await speedProgress.WaitCaughtUpAsync(catchUp, "speed layer (log: " + speed.LogPath + ")", cancellationToken);
                await archiveProgress.WaitCaughtUpAsync(catchUp, "archiver (log: " + archiver.LogPath + ")", cancellationToken);
            }

            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s caught up; the final batch run"));
            batch = Start("batch", batchArgs);
            var exit = await batch.WaitAsync(TimeSpan.FromMinutes(10), cancellationToken);
            if (exit != 0)
            {
                throw new InvalidOperationException($"the final batch run failed (exit {exit}):\n{batch.Tail()}");
            }

            var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
            var master = await MasterDatasetCheck.CompareAsync(data, producer.ValidOffsets, cancellationToken);
            var orphans = (await MergedViewCheck.RowsAsync(serving.Client, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_staging\\_%'", cancellationToken)).Count;
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s checked"));
            List<string> notes =
            [
                string.Create(CultureInfo.InvariantCulture, $"seed {settings.Seed}: kills speed {kills["speed"]}, archiver {kills["archiver"]}, batch {kills["batch"]}; {batchesFinished} batch runs finished between kills"),
                string.Create(CultureInfo.InvariantCulture, $"merged views: {view.EventsInView:N0} events, lost {view.Lost}, duplicated {view.Duplicated}"),
                string.Create(CultureInfo.InvariantCulture, $"master dataset: {master.Rows:N0} rows in {master.Files:N0} files, missing {master.Missing}, duplicated {master.Duplicated}"),
                string.Create(CultureInfo.InvariantCulture, $"staging tables left by killed batch runs after the final run: {orphans}"),
                string.Create(CultureInfo.InvariantCulture, $"wall time {clock.Elapsed.TotalSeconds:F0} s"),
            ];
            notes.AddRange(view.Mismatches);
            return new FaultResult(Fault, kills.Values.Sum(), expected.Events, view.EventsInView, view.Lost + master.Missing, view.Duplicated + master.Duplicated) { Notes = notes, Error = orphans > 0 ? $"{orphans} staging tables of killed batch runs were not cleaned up" : null };
        }
        finally
        {
            await speed.DisposeAsync();
            await archiver.DisposeAsync();
            if (batch is not null)
            {
                await batch.DisposeAsync();
            }
        }
    }

    /// <summary>Half the events now (in time order), half in three closed hours two and three days back; spread over <paramref name="duration"/>.</summary>
    private static void Produce(ChaosProducer producer, ChaosSettings settings, int seed, TimeSpan duration, CancellationToken cancellationToken)
    {
        var pace = Stopwatch.StartNew();
        var random = new Random(seed);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed });
        var now = DateTime.UtcNow;
        var today = now.Date;
        DateTime[] pastHours = [today.AddDays(-3).AddHours(10), today.AddDays(-2).AddHours(3), today.AddDays(-2).AddHours(15)];
        var recentStart = now.AddMinutes(-55);
        var recentSpan = TimeSpan.FromMinutes(54);
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

        producer.Flush(TimeSpan.FromMinutes(5));
    }
}
