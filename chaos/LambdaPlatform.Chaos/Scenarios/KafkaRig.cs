using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// What every Kafka fault scenario runs against: a dev broker (events + dead-letter topics), a real
/// <c>clickhouse-server</c> with the serving tables, the real <c>lambda speed</c> and <c>lambda archive</c> as child processes
/// (groups <c>speed</c> and <c>archive</c>), the archiver writing the Parquet master dataset, and a producer with the
/// platform's idempotent <c>acks=all</c> settings sending valid events at a steady pace with current timestamps.
/// <see cref="VerifyAsync"/> waits for both groups to commit everything and compares the merged views and the
/// master dataset with the exact answer from the delivery reports.
/// </summary>
internal sealed class KafkaRig : IAsyncDisposable
{
    /// <summary>Partitions of the events topic: enough to move some between speed instances, and to keep every one far below the mock's 5 MiB.</summary>
    public const int Partitions = 12;

    /// <summary>Deadline of every "eventually" (delivery, catch-up): generous, a slow machine only waits longer.</summary>
    public static readonly TimeSpan Eventually = TimeSpan.FromSeconds(150);

    private readonly TextWriter _log;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<LambdaProcess> _processes = [];
    private readonly HashSet<LambdaProcess> _stopped = [];
    private readonly Dictionary<LambdaProcess, MetricsProbe> _probes = [];
    private long _sent;

    private KafkaRig(ChaosSettings settings, string folder, TextWriter log, DevBroker broker, ServingServer serving, TimeSpan sessionTimeout)
    {
        Settings = settings;
        Folder = folder;
        _log = log;
        Broker = broker;
        Serving = serving;
        DataRoot = Path.Combine(folder, "data");
        Directory.CreateDirectory(DataRoot);
        Producer = new ChaosProducer(broker.BootstrapServers, new ExpectedViews());
        SessionTimeout = sessionTimeout;
    }

    /// <summary>How long the broker keeps a silent (SIGKILLed) member's partitions.</summary>
    public TimeSpan SessionTimeout { get; }

    /// <summary>Sizes and seed.</summary>
    public ChaosSettings Settings { get; }

    /// <summary>The scenario's folder (server data, master dataset, child-process logs).</summary>
    public string Folder { get; }

    /// <summary>Root of the master dataset the archiver writes.</summary>
    public string DataRoot { get; }

    /// <summary>The broker, with its fault controls.</summary>
    public DevBroker Broker { get; }

    /// <summary>The serving layer's ClickHouse server.</summary>
    public ServingServer Serving { get; }

    /// <summary>The producer whose delivery reports make the exact answer.</summary>
    public ChaosProducer Producer { get; }

    /// <summary>Events handed to the producer so far.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Time since the rig started, for log lines and fault schedules.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Starts broker and ClickHouse server in <c>settings.Folder(name)</c>; the seed is logged first.</summary>
    /// <param name="settings">Sizes and seed.</param>
    /// <param name="name">The scenario's folder name.</param>
    /// <param name="log">Progress lines.</param>
    /// <param name="cancellationToken">Stops the start.</param>
    /// <param name="sessionTimeout">The groups' session timeout (default the dev broker's 10 s).</param>
    public static async Task<KafkaRig> StartAsync(ChaosSettings settings, string name, TextWriter log, CancellationToken cancellationToken, TimeSpan? sessionTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seed {settings.Seed}, {settings.FaultEvents:N0} events, {Partitions} partitions"));
        var folder = settings.Folder(name);
        var timeout = sessionTimeout ?? new DevBrokerOptions().ConsumerGroupSessionTimeout;
        var broker = ChaosBroker.Start(Partitions, sessionTimeout: timeout);
        try
        {
            var serving = await ServingServer.StartAsync(Path.Combine(folder, "clickhouse"), cancellationToken);
            var rig = new KafkaRig(settings, folder, log, broker, serving, timeout);
            rig.Log($"broker {broker.BootstrapServers}, clickhouse-server on port {serving.HttpPort}");
            return rig;
        }
        catch
        {
            broker.Dispose();
            throw;
        }
    }

    /// <summary>Warnings logged so far by every process the rig started (failed fetches, commits and connections they rode out).</summary>
    public int Warnings() => _processes.Sum(p => File.Exists(p.LogPath) ? ReadLines(p.LogPath).Count(l => l.StartsWith("warn:", StringComparison.Ordinal)) : 0);

    private static IEnumerable<string> ReadLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            yield return line;
        }
    }

    /// <summary>Writes a progress line stamped with <see cref="Elapsed"/>.</summary>
    public void Log(string line) =>
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,6:F1} s] {line}"));

    /// <summary>Starts one more <c>lambda speed --http</c> process in group <c>speed</c> (its metrics: <see cref="Probe"/>).</summary>
    public LambdaProcess StartSpeed(string name)
    {
        var port = OutageProbes.FreePort();
        var process = LambdaProcess.Start(name, ["speed", "--kafka", Broker.BootstrapServers, "--clickhouse", Serving.ConnectionString, "--http", $"127.0.0.1:{port}"], Path.Combine(Folder, name + ".log"));
        _processes.Add(process);
        _probes[process] = new MetricsProbe(port, "lambda_speed");
        Log($"started {name} (pid {process.Id})");
        return process;
    }

    /// <summary>Starts one more <c>lambda archive --http</c> process (group <c>archive</c>) writing the master dataset under <see cref="DataRoot"/>.</summary>
    public LambdaProcess StartArchiver(string name)
    {
        // Files are published (and offsets committed) 2 s after they open, so soon after the traffic stops.
        var port = OutageProbes.FreePort();
        var process = LambdaProcess.Start(name, ["archive", "--kafka", Broker.BootstrapServers, "--data", DataRoot, "--max-file-age", "2", "--http", $"127.0.0.1:{port}"], Path.Combine(Folder, name + ".log"));
        _processes.Add(process);
        _probes[process] = new MetricsProbe(port, "lambda_archive");
        Log($"started {name} (pid {process.Id})");
        return process;
    }

    /// <summary>The metrics of a process started by the rig (its assigned partitions and work in flight).</summary>
    public MetricsProbe Probe(LambdaProcess process) => _probes[process];

    /// <summary>Stops a speed or archiver process with SIGTERM (a graceful leave: it closes its consumer), waiting for it to end.</summary>
    public async Task StopGracefullyAsync(LambdaProcess process, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(process);
        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("cannot run kill"))
        {
            await kill.WaitForExitAsync(cancellationToken);
        }

        _stopped.Add(process);
        var code = await process.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        Log($"{process.Name} stopped on SIGTERM, exit code {code}");
    }

    /// <summary>Kills a speed or archiver process with SIGKILL (no flush, no commit, no leave: the group notices after its session timeout).</summary>
    public async Task KillAsync(LambdaProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        _stopped.Add(process);
        await process.KillAsync();
        Log($"{process.Name} killed (SIGKILL)");
    }

    /// <summary>
    /// Sends <see cref="ChaosSettings.FaultEvents"/> valid events evenly over <paramref name="duration"/> (current,
    /// increasing timestamps; event content from the seed) on a thread of its own; completes when all are handed
    /// to the producer (not yet acknowledged).
    /// </summary>
    public Task ProduceAsync(TimeSpan duration, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(async () =>
        {
            var total = Settings.FaultEvents;
            var generator = new EventGenerator(new EventGeneratorOptions { Seed = Settings.Seed });
            var started = Stopwatch.StartNew();
            var last = DateTime.MinValue;
            var sent = 0;
            Log(string.Create(CultureInfo.InvariantCulture, $"producing {total:N0} events over {duration.TotalSeconds:F0} s"));
            while (sent < total)
            {
                var due = (int)Math.Min(total, Math.Ceiling(total * (started.Elapsed / duration)));
                if (due <= sent)
                {
                    await Task.Delay(10, cancellationToken);
                    continue;
                }

                for (; sent < due; sent++)
                {
                    var now = DateTime.UtcNow;
                    last = now > last ? now : last;
                    Producer.Send(generator.Next(last)); // blocks while the producer's queue is full (broker down)
                    Interlocked.Increment(ref _sent);
                }
            }

            Log(string.Create(CultureInfo.InvariantCulture, $"all {total:N0} events handed to the producer ({Producer.Expected.Events:N0} acknowledged so far)"));
        }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    /// <summary>
    /// Waits until every event is acknowledged and both groups committed everything, then compares the merged
    /// views and the master dataset with the exact answer. Lost and duplicated add up both checks.
    /// </summary>
    public async Task<FaultResult> VerifyAsync(string fault, int injected, IReadOnlyList<string> notes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(notes);
        var allNotes = new List<string>(notes);
        string? error = null;
        try
        {
            await Task.Run(() => Producer.Flush(Eventually), cancellationToken);
            Log(string.Create(CultureInfo.InvariantCulture, $"producer: {Producer.Expected.Events:N0} acknowledged, {Producer.Failed:N0} failed"));
            if (Producer.Failed > 0)
            {
                error = string.Create(CultureInfo.InvariantCulture, $"{Producer.Failed} deliveries failed (last: {Producer.LastError}); the idempotent producer should have retried them");
            }

            await WaitCaughtUpAsync("speed", "speed layer", cancellationToken);
            await WaitCaughtUpAsync("archive", "archiver", cancellationToken);
        }
        catch (TimeoutException e)
        {
            error = e.Message;
            foreach (var speed in _processes)
            {
                allNotes.Add($"{speed.Name} ({(speed.HasExited ? "exited " + speed.ExitCode.ToString(CultureInfo.InvariantCulture) : "running")}), log tail:\n{speed.Tail(15)}");
            }
        }

        foreach (var process in _processes)
        {
            // Warnings show the fault reached the component (failed fetches and commits it rode out).
            var warnings = File.Exists(process.LogPath) ? File.ReadLines(process.LogPath).Count(l => l.StartsWith("warn:", StringComparison.Ordinal)) : 0;
            allNotes.Add(FormattableString.Invariant($"{process.Name}: {warnings} warnings in its log"));
            if (process.HasExited && !_stopped.Contains(process))
            {
                error = FormattableString.Invariant($"{process.Name} (pid {process.Id}) ended on its own with exit code {process.ExitCode}:\n{process.Tail()}")
                    + (error is null ? string.Empty : "\n" + error);
            }
        }

        var view = await MergedViewCheck.CompareAsync(Serving.Client, Producer.Expected, cancellationToken);

        // What Kafka holds, read back independently: acknowledged offsets, plus extra copies of acknowledged events.
        // librdkafka's mock checks an idempotent producer's sequence numbers only for transactional producers, so a
        // retried batch whose first attempt was appended (its response lost with a dropped connection) is appended
        // again; a real broker would answer DUPLICATE_SEQUENCE_NUMBER. Such a copy is a valid record of the topic:
        // the archiver must archive it once and the views must count its event once (dedupe by eventId). Any
        // other unacknowledged record is an error.
        var topic = await Task.Run(ReadTopic, cancellationToken);
        var acknowledged = Producer.ValidOffsets;
        var acknowledgedIds = new HashSet<Guid>(acknowledged.Positions().Where(topic.ContainsKey).Select(k => topic[k]));
        var copies = topic.Where(r => !acknowledged.Contains(r.Key.Partition, r.Key.Offset) && acknowledgedIds.Contains(r.Value)).Select(r => r.Key).ToList();
        var strangers = topic.Count - acknowledged.Positions().Count(topic.ContainsKey) - copies.Count;
        var notInTopic = acknowledged.Positions().Count(k => !topic.ContainsKey(k));
        allNotes.Add(FormattableString.Invariant(
            $"kafka: {topic.Count:N0} records in {Topics.Events}: {acknowledged.Count:N0} acknowledged, {copies.Count:N0} extra copies of acknowledged events (the mock broker does not deduplicate idempotent retries), {strangers} others, {notInTopic} acknowledged but not in the topic"));
        if (strangers > 0 || notInTopic > 0)
        {
            error ??= FormattableString.Invariant($"the topic does not hold what was acknowledged: {strangers} unknown records, {notInTopic} acknowledged records missing");
        }

        var records = acknowledged.Snapshot();
        foreach (var (p, o) in copies)
        {
            records.Add(p, o);
        }

        var master = await MasterDatasetCheck.CompareAsync(DataRoot, records, cancellationToken);
        Log(string.Create(CultureInfo.InvariantCulture,
            $"merged views: {view.EventsInView:N0} events, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsWrong} of {view.CellsCompared:N0} cells wrong; master dataset: {master.Rows:N0} rows in {master.Files} files, missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}"));
        allNotes.Add(string.Create(CultureInfo.InvariantCulture, $"merged views: lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsCompared:N0} cells compared, {view.CellsWrong} wrong"));
        allNotes.Add(string.Create(CultureInfo.InvariantCulture, $"master dataset (every *.parquet read directly): {master.Rows:N0} rows in {master.Files} files, missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}, superseded files {master.Superseded} (of {records.Count:N0} records)"));
        allNotes.AddRange(view.Mismatches);
        allNotes.AddRange(master.Problems);
        if (master.Misplaced > 0)
        {
            error ??= FormattableString.Invariant($"{master.Misplaced} master dataset rows are not where their file's name and folder say");
        }

        allNotes.Add(string.Create(CultureInfo.InvariantCulture, $"wall time {_clock.Elapsed.TotalSeconds:F1} s"));
        return new FaultResult(fault, injected, Producer.Expected.Events, view.EventsInView, view.Lost + master.Missing, view.Duplicated + master.Duplicated)
        {
            Notes = allNotes,
            Error = error,
            CellsCompared = view.CellsCompared,
            CellsWrong = view.CellsWrong,
        };
    }

    /// <summary>Every record of the events topic: (partition, offset) → eventId (<see cref="Guid.Empty"/> when it has none).</summary>
    private Dictionary<(int Partition, long Offset), Guid> ReadTopic()
    {
        var config = KafkaDefaults.ConsumerConfig(Broker.BootstrapServers, "chaos-reader-" + Guid.NewGuid().ToString("N")[..8]);
        using var consumer = new Confluent.Kafka.ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        var records = new Dictionary<(int, long), Guid>();
        var ends = new Dictionary<int, long>();
        var starts = new List<Confluent.Kafka.TopicPartitionOffset>();
        for (var p = 0; p < Partitions; p++)
        {
            var w = consumer.QueryWatermarkOffsets(new Confluent.Kafka.TopicPartition(Topics.Events, p), TimeSpan.FromSeconds(10));
            if (w.High.Value > w.Low.Value)
            {
                ends[p] = w.High.Value;
                starts.Add(new Confluent.Kafka.TopicPartitionOffset(Topics.Events, p, w.Low));
            }
        }

        consumer.Assign(starts);
        var deadline = Stopwatch.StartNew();
        while (ends.Count > 0)
        {
            if (deadline.Elapsed > Eventually)
            {
                throw new TimeoutException($"could not read the topic back within {Eventually}");
            }

            Confluent.Kafka.ConsumeResult<byte[]?, byte[]?>? record;
            try
            {
                record = consumer.Consume(TimeSpan.FromMilliseconds(500));
            }
            catch (Confluent.Kafka.ConsumeException e) when (!e.Error.IsFatal)
            {
                continue; // e.g. an injected fetch error still pending: librdkafka fetches again
            }

            if (record is null)
            {
                continue;
            }

            records[(record.Partition.Value, record.Offset.Value)] = EventId(record.Message.Value);
            if (ends.TryGetValue(record.Partition.Value, out var end) && record.Offset.Value + 1 >= end)
            {
                ends.Remove(record.Partition.Value);
            }
        }

        consumer.Close();
        return records;
    }

    private static Guid EventId(byte[]? json)
    {
        if (json is null)
        {
            return Guid.Empty;
        }

        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json);
            return document.RootElement.TryGetProperty("eventId", out var id) && id.TryGetGuid(out var guid) ? guid : Guid.Empty;
        }
        catch (System.Text.Json.JsonException)
        {
            return Guid.Empty;
        }
    }

    private async Task WaitCaughtUpAsync(string group, string name, CancellationToken cancellationToken)
    {
        using var progress = new GroupProgress(Broker.BootstrapServers, group, Topics.Events, Partitions);
        await progress.WaitCaughtUpAsync(Eventually, name, cancellationToken);
        Log($"{name} committed everything");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        Producer.Dispose();
        await Serving.DisposeAsync();
        await Broker.DisposeAsync();
    }
}
