using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// Producers whose clocks are wrong: one runs 10 minutes ahead, one 3 days behind, one is right, and one runs 2 hours
/// ahead, past the decoder's limit (events more than 1 h ahead of the platform clock are refused: a clock that far
/// off cannot be trusted to place them). A split deployment (<c>lambda speed</c>, <c>lambda archive</c>,
/// clickhouse-server) takes them all. Checked: before any batch run every cell of the merged views equals the exact
/// answer of the accepted events (the real-time side counts the 3-days-old ones too, W being behind them); after a
/// batch run (which moves W past the old day) again every cell; the master dataset holds every accepted event once;
/// and each refused event is in <c>events.dlq</c> exactly once, with a reason that names its timestamp — counted as
/// dead-lettered, not lost.
/// </summary>
/// <remarks>
/// A refused event is refused by the speed layer and by the archiver alike because both read it well within an hour
/// of its production; an event only a little more than an hour ahead could be refused by one and accepted by the
/// other, depending on when each reads it (a limit of the rule, stated in the README).
/// </remarks>
public sealed class ClockSkewScenario : IChaosScenario
{
    /// <summary>The producers' clock offsets, and their share of the events.</summary>
    public static readonly IReadOnlyList<(string Name, TimeSpan Skew, int Share)> Producers =
    [
        ("10 minutes ahead", TimeSpan.FromMinutes(10), 4),
        ("3 days behind", -TimeSpan.FromDays(3), 4),
        ("on time", TimeSpan.Zero, 1),
        ("2 hours ahead (refused)", TimeSpan.FromHours(2), 1),
    ];

    private const int Partitions = 4;

    /// <inheritdoc />
    public string Fault => "producer clocks skewed (+10 min, -3 days)";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var events = settings.FaultEvents / 2;
        var data = settings.Folder("clock-skew/data");
        var logs = settings.Folder("clock-skew/logs");
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"clock skew: seed {settings.Seed}, {events:N0} events from producers {string.Join(", ", Producers.Select(p => p.Name))}; logs in {logs}"));
        using var broker = ChaosBroker.Start(Partitions);
        await using var serving = await ServingServer.StartAsync(settings.Folder("clock-skew/clickhouse"), cancellationToken);
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString], Path.Combine(logs, "speed.log"), environment);
        await using var archiver = LambdaProcess.Start("archiver", ["archive", "--kafka", broker.BootstrapServers, "--data", data, "--max-file-age", "1"], Path.Combine(logs, "archiver.log"), environment);
        await using var deadLetters = new FuzzDeadLetterReader(broker.BootstrapServers, Topics.DeadLetter, Partitions);
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(broker.BootstrapServers, expected);
        var refused = new OffsetSet();
        var perProducer = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        var random = new Random(settings.Seed);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed });
        var shares = Producers.Sum(p => p.Share);
        var notes = new List<string>();
        var errors = new List<string>();

        // Each producer stamps its events with its own clock (events of its last half hour), over a few seconds of traffic.
        for (var i = 0; i < events; i++)
        {
            var pick = random.Next(shares);
            var (name, skew, _) = Producers.First(p => (pick -= p.Share) < 0);
            var e = generator.Next(DateTime.UtcNow + skew - TimeSpan.FromMilliseconds(random.Next(1_800_000))); // events of the last half hour, by its clock
            perProducer[name] = perProducer.GetValueOrDefault(name) + 1;
            if (skew > TimeSpan.FromHours(1))
            {
                producer.SendRaw(e.Json, null, (p, o) => refused.Add(p, o));
            }
            else
            {
                producer.Send(e);
            }

            if (i % 2_000 == 1_999)
            {
                await Task.Delay(100, cancellationToken);
            }
        }

        await Task.Run(() => producer.Flush(TimeSpan.FromMinutes(2)), cancellationToken);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {clock.Elapsed.TotalSeconds,6:F1}s produced: {string.Join(", ", perProducer.Select(p => $"{p.Key} {p.Value:N0}"))}"));
        using (var speedProgress = new GroupProgress(broker.BootstrapServers, "speed", Topics.Events, Partitions))
        using (var archiveProgress = new GroupProgress(broker.BootstrapServers, "archive", Topics.Events, Partitions))
        {
            await speedProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(120), "speed layer (log: " + speed.LogPath + ")", cancellationToken);
            await archiveProgress.WaitCaughtUpAsync(TimeSpan.FromSeconds(120), "archiver (log: " + archiver.LogPath + ")", cancellationToken);
        }

        // Before any batch run: the real-time side answers everything accepted.
        var before = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"before a batch run: {before.EventsInView:N0} events in the merged views, lost {before.Lost}, duplicated {before.Duplicated}, {before.CellsWrong} of {before.CellsCompared:N0} cells wrong"));
        notes.AddRange(before.Mismatches.Select(m => "before the batch run: " + m));
        if (!before.Exact)
        {
            errors.Add("the merged views were not exact before the batch run");
        }

        await using (var batch = LambdaProcess.Start("batch", ["batch", "run", "--data", data], Path.Combine(logs, "batch.log"), environment))
        {
            var exit = await batch.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
            if (exit != 0)
            {
                throw new InvalidOperationException($"the batch run failed (exit {exit}):\n{batch.Tail()}");
            }
        }

        var watermark = (await MergedViewCheck.RowsAsync(serving.Client, "SELECT toUnixTimestamp(max(watermark)) FROM lambda_watermarks WHERE view = 'checkout_revenue'", cancellationToken))
            .Select(r => DateTime.UnixEpoch.AddSeconds(long.Parse(r[0], CultureInfo.InvariantCulture))).FirstOrDefault();
        var oldDay = DateTime.UtcNow.Date.AddDays(-3);
        if (watermark <= oldDay)
        {
            errors.Add($"W ({watermark:O}) did not move past the 3-days-old day {oldDay:yyyy-MM-dd} after the batch run");
        }

        var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
        var master = await MasterDatasetCheck.CompareAsync(data, producer.ValidOffsets, cancellationToken);

        // The refused events: in the dead-letter topic once each, with a reason naming the timestamp.
        await deadLetters.WaitAsync(r => refused.Positions().All(r.Seen().ContainsKey), TimeSpan.FromSeconds(60), cancellationToken);
        var seen = deadLetters.Seen();
        var reasons = deadLetters.Reasons();
        var refusedPositions = refused.Positions().ToList();
        var missing = refusedPositions.Count(p => !seen.ContainsKey(p));
        var twice = refusedPositions.Sum(p => Math.Max(0, seen.GetValueOrDefault(p) - 1));
        var withoutTimestampReason = refusedPositions.Count(p => seen.ContainsKey(p) && !reasons.GetValueOrDefault(p, string.Empty).Contains("timestamp", StringComparison.Ordinal));
        var others = seen.Keys.Count(k => !refused.Contains(k.Partition, k.Offset));
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"refused (more than 1 h ahead): {refusedPositions.Count:N0} sent, {refusedPositions.Count - missing:N0} in events.dlq, {missing} missing, {twice} twice, {withoutTimestampReason} without a timestamp reason, {others} other dead letters; e.g. \"{reasons.Values.FirstOrDefault()}\""));
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"after the batch run: W {watermark:yyyy-MM-dd HH:mm}; {view.EventsInView:N0} events, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsWrong} of {view.CellsCompared:N0} cells wrong"));
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"master dataset: {master.Rows:N0} rows in {master.Files} files (read directly), missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}"));
        notes.AddRange(view.Mismatches);
        notes.AddRange(master.Problems);
        notes.AddRange(deadLetters.Problems().Take(10));
        if (withoutTimestampReason > 0 || others > 0)
        {
            errors.Add($"{withoutTimestampReason} refused events lack a timestamp reason; {others} dead letters name no refused event");
        }

        if (master.Misplaced > 0)
        {
            errors.Add($"{master.Misplaced} master dataset rows are not where their file's name and folder say");
        }

        errors.AddRange(LambdaProcess.ExitedOnTheirOwn(speed, archiver));

        notes.Add(string.Create(CultureInfo.InvariantCulture, $"wall time {clock.Elapsed.TotalSeconds:F0} s"));
        var skewed = perProducer.Where(p => Producers.First(x => x.Name == p.Key).Skew != TimeSpan.Zero).Sum(p => p.Value);
        return new FaultResult(Fault, skewed, expected.Events, view.EventsInView, view.Lost + master.Missing + missing, view.Duplicated + master.Duplicated + twice)
        {
            Notes = notes,
            Error = errors.Count == 0 ? null : string.Join("\n", errors),
            CellsCompared = before.CellsCompared + view.CellsCompared,
            CellsWrong = before.CellsWrong + view.CellsWrong,
            DeadLettered = refusedPositions.Count - missing,
        };
    }
}
