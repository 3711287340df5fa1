using System.Globalization;
using System.Text.RegularExpressions;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Cli.Commands;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// Server mode: the standalone speed layer (<c>lambda speed --http</c>, a child process) writes to a real
/// <c>clickhouse-server</c>; while events flow the server is killed for <see cref="ChaosSettings.ClickHouseOutage"/> and
/// started again on the same folder and ports. Checked: the group's committed offsets do not move during the outage,
/// consumption pauses (<c>lambda_speed_events_in</c> stands still), flushes are retried with growing delays,
/// <c>/health</c> answers 503 with the reason throughout, the process's memory stays bounded (peak RSS in the notes),
/// and afterwards the merged views equal the exact answer.
/// </summary>
public sealed partial class ClickHouseOutageScenario : IChaosScenario
{
    private const int Partitions = 8;
    private const long MemoryBound = 1L << 30; // 1 GiB: far above a healthy speed layer, far below "buffers everything"
    private static readonly TimeSpan Before = TimeSpan.FromSeconds(8);
    private static readonly TimeSpan After = TimeSpan.FromSeconds(8);

    /// <inheritdoc />
    public string Fault => "clickhouse: server down 30 s";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        using var progress = new TeeWriter(log, Path.Combine(settings.Folder("clickhouse-outage"), "progress.log"));
        return await RunAsync(settings, progress, cancellationToken);
    }

    private async Task<FaultResult> RunAsync(ChaosSettings settings, TeeWriter log, CancellationToken cancellationToken)
    {
        var outage = settings.ClickHouseOutage;
        log.WriteLine($"{Fault}: seed {settings.Seed}, {settings.FaultEvents} events over {(Before + outage + After).TotalSeconds:0} s, server down {outage.TotalSeconds:0} s");
        var folder = settings.Folder("clickhouse-outage");
        var notes = new List<string>();
        var violations = new List<string>();

        using var broker = ChaosBroker.Start(Partitions);
        var serverFolder = settings.Folder("clickhouse-outage/server");
        await using var server = await ServingServer.StartAsync(serverFolder, cancellationToken);
        var port = OutageProbes.FreePort();
        var health = $"http://127.0.0.1:{port}/health";
        var metrics = $"http://127.0.0.1:{port}/metrics";
        await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--http", $"127.0.0.1:{port}"], Path.Combine(folder, "speed.log"),
            new Dictionary<string, string> { [SpeedCommand.ClickHouseEnvironmentVariable] = server.ConnectionString });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var committed = new CommittedOffsets(broker.BootstrapServers, "speed", Partitions);

        async Task<(int Status, string Body)> Health()
        {
            if (speed.HasExited)
            {
                throw new InvalidOperationException($"the speed layer exited with {speed.ExitCode}: {speed.Tail()}");
            }

            return await OutageProbes.GetAsync(http, health, cancellationToken);
        }

        async Task<double> Metric(string name) => OutageProbes.MetricSum((await OutageProbes.GetAsync(http, metrics, cancellationToken)).Body, name);

        await OutageProbes.WaitUntilAsync(async () => (await Health()).Status == 200, OutageProbes.Eventually, "speed layer answering 200 on /health", cancellationToken);

        await using var sampler = new RssSampler(speed.Id);
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(broker.BootstrapServers, expected);
        await using var production = new Production(producer, settings.Seed, settings.FaultEvents, Before + outage + After, cancellationToken);

        // Events flow and get flushed before the fault.
        await OutageProbes.WaitUntilAsync(() => Task.FromResult(CommittedOffsets.Total(committed.Read()) > 0), OutageProbes.Eventually, "first commit of the speed layer", cancellationToken);
        await Task.Delay(Before / 2, cancellationToken);
        var rssBefore = OutageProbes.Memory(speed.Id).Rss;

        await server.StopAsync();
        var stoppedAt = DateTime.UtcNow;
        log.WriteLine($"clickhouse-server stopped at {stoppedAt:HH:mm:ss.fff}");
        string? reason = null;
        try
        {
            await OutageProbes.WaitUntilAsync(async () =>
            {
                var (status, body) = await Health();
                reason = body;
                return status == 503;
            }, TimeSpan.FromSeconds(30), "/health answering 503 after ClickHouse stopped", cancellationToken);
            notes.Add($"/health went 503 after {(DateTime.UtcNow - stoppedAt).TotalSeconds:0.0} s: {reason}");
        }
        catch (TimeoutException e)
        {
            violations.Add(e.Message + "; last answer: " + reason);
        }

        // Once the first flush failed, nothing may be committed and nothing more consumed until ClickHouse is back.
        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        var held = committed.Read();
        log.WriteLine($"holding at {CommittedOffsets.Total(held)} committed");
        var consumedAtRed = await Metric("lambda_speed_events_in_total");
        int red = 0, green = 0;
        long maxLag = 0;
        var moved = false;
        while (DateTime.UtcNow - stoppedAt < outage)
        {
            var now = committed.Read();
            if (!moved && now.Any(kv => held.GetValueOrDefault(kv.Key, -1) != kv.Value))
            {
                moved = true;
                violations.Add($"committed offsets moved during the outage: {CommittedOffsets.Total(held)} -> {CommittedOffsets.Total(now)}");
            }

            maxLag = Math.Max(maxLag, committed.HighWatermarks() - CommittedOffsets.Total(now));
            if ((await Health()).Status == 503)
            {
                red++;
            }
            else
            {
                green++;
            }

            await Task.Delay(1000, cancellationToken);
        }

        log.WriteLine("outage over, reading metrics");
        var consumedAtEnd = await Metric("lambda_speed_events_in_total");
        var failuresDuring = await Metric("lambda_speed_flush_failures_total");
        notes.Add($"during the outage: committed offsets held at {CommittedOffsets.Total(held)} records ({(moved ? "MOVED" : "unchanged")}), lag grew to {maxLag}, " +
                  $"/health 503 in {red} of {red + green} polls, records consumed {consumedAtRed} -> {consumedAtEnd}, flush failures {failuresDuring}");
        if (green > 0)
        {
            violations.Add($"/health answered 200 in {green} of {red + green} polls while ClickHouse was down");
        }

        if (consumedAtRed <= 0)
        {
            violations.Add("/metrics has no lambda_speed_events_in_total");
        }

        if (consumedAtEnd != consumedAtRed)
        {
            violations.Add($"consumption did not pause during the outage: {consumedAtEnd - consumedAtRed} more records read");
        }

        try
        {
            await server.StartAgainAsync(cancellationToken);
        }
        catch (LambdaPlatform.ClickHouse.ClickHouseException e)
        {
            var errors = Path.Combine(serverFolder, "log", "clickhouse-server.err.log");
            var lines = File.Exists(errors) ? File.ReadLines(errors).Where(l => l.Contains("<Error>", StringComparison.Ordinal)).TakeLast(3) : [];
            throw new InvalidOperationException($"clickhouse-server did not start again: {string.Join(" | ", lines)}", e);
        }

        var restartedAt = DateTime.UtcNow;
        log.WriteLine($"clickhouse-server started again at {restartedAt:HH:mm:ss.fff}");
        await production.Completion;
        log.WriteLine($"producer done: {expected.Events} events acknowledged");
        if (producer.Failed > 0)
        {
            violations.Add($"{producer.Failed} events not acknowledged by Kafka: {producer.LastError}");
        }

        await OutageProbes.WaitUntilAsync(() => Task.FromResult(committed.HighWatermarks() == CommittedOffsets.Total(committed.Read())), OutageProbes.Eventually,
            "speed layer committing every record after the outage", cancellationToken);
        await OutageProbes.WaitUntilAsync(async () => (await Health()).Status == 200, OutageProbes.Eventually, "/health answering 200 after the outage", cancellationToken);
        var flushFailures = await Metric("lambda_speed_flush_failures_total");
        notes.Add($"caught up {(DateTime.UtcNow - restartedAt).TotalSeconds:0.0} s after the restart; flush failures in total {flushFailures} (the injected count: writes that failed)");
        if (flushFailures <= 0)
        {
            violations.Add("no flush failed while the server was down: the fault did not reach the speed layer");
        }

        log.WriteLine("caught up; comparing merged views");
        var comparison = await MergedViewCheck.CompareAsync(server.Client, expected, cancellationToken);
        var (_, hwm) = OutageProbes.Memory(speed.Id);
        var peakRss = Math.Max(sampler.Peak, hwm);
        notes.Add($"speed layer memory: RSS {Mib(rssBefore)} MiB before the outage, peak {Mib(peakRss)} MiB (VmHWM)");
        if (peakRss > MemoryBound)
        {
            violations.Add($"peak RSS {Mib(peakRss)} MiB is above {Mib(MemoryBound)} MiB");
        }

        var delays = RetryDelays(File.ReadAllText(speed.LogPath));
        notes.Add($"retries logged: {delays.Count}, delays {string.Join(", ", delays.Take(12).Select(d => d.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"))}{(delays.Count > 12 ? ", …" : string.Empty)}");
        if (delays.Count == 0 || delays.Count > outage.TotalSeconds * 5)
        {
            violations.Add($"expected flush retries with backoff during a {outage.TotalSeconds:0} s outage, the log shows {delays.Count}");
        }

        return OutageResult.From(Fault, (long)flushFailures, expected, comparison, notes, violations);
    }

    /// <summary>The "retrying in" delays of the speed layer's warnings, in order.</summary>
    internal static List<TimeSpan> RetryDelays(string log) =>
        [.. RetryLine().Matches(log).Select(m => TimeSpan.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))];

    private static long Mib(long bytes) => bytes / (1024 * 1024);

    [GeneratedRegex(@"speed flush failed \(attempt \d+\), retrying in (\d\d:\d\d:\d\d(?:\.\d+)?)")]
    private static partial Regex RetryLine();
}
