using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Hosting;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// Embedded mode: <c>lambda up</c> (dev broker, chDB, speed layer, archiver, HTTP API) in this process, with every
/// ClickHouse write (insert or statement) failing for <see cref="ChaosSettings.ClickHouseOutage"/> through
/// a decorator of the composition's ClickHouse (<c>DecorateClickHouse</c>) while events flow. chDB lives in-process and cannot be killed, so the
/// fault is injected at the client boundary the speed layer writes through. Same checks as the server outage:
/// committed offsets held, consumption paused, <c>/health</c> 503 then 200, merged views exact afterwards.
/// </summary>
public sealed class ClickHouseOutageEmbeddedScenario : IChaosScenario
{
    private const int Partitions = 8;
    private static readonly TimeSpan Before = TimeSpan.FromSeconds(8);
    private static readonly TimeSpan After = TimeSpan.FromSeconds(8);

    /// <inheritdoc />
    public string Fault => "clickhouse: writes fail (embedded)";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var folder = settings.Folder("clickhouse-writes-fail");
        using var progress = new TeeWriter(log, Path.Combine(folder, "progress.log"));
        return await RunAsync(settings, progress, folder, cancellationToken);
    }

    private async Task<FaultResult> RunAsync(ChaosSettings settings, TeeWriter log, string folder, CancellationToken cancellationToken)
    {
        var outage = settings.ClickHouseOutage;
        log.WriteLine($"{Fault}: seed {settings.Seed}, {settings.FaultEvents} events over {(Before + outage + After).TotalSeconds:0} s, writes failing {outage.TotalSeconds:0} s");
        var notes = new List<string>();
        var violations = new List<string>();
        FailingWritesClickHouse? fault = null;
        var port = OutageProbes.FreePort();
        await using var host = await PlatformHost.StartAsync(new UpOptions
        {
            DataDirectory = Path.Combine(folder, "data"),
            Http = $"127.0.0.1:{port}",
            Partitions = Partitions,
        }, services => services.DecorateClickHouse(inner => fault = new FailingWritesClickHouse(inner)), cancellationToken);
        if (fault is null)
        {
            throw new InvalidOperationException("lambda up did not apply the ClickHouse decorator");
        }

        var health = host.Endpoints.Http + "/health";
        var metrics = host.Endpoints.Http + "/metrics";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var committed = new CommittedOffsets(host.Endpoints.Kafka, "speed", Partitions);
        async Task<int> Health() => (await OutageProbes.GetAsync(http, health, cancellationToken)).Status;
        async Task<double> Metric(string name) => OutageProbes.MetricSum((await OutageProbes.GetAsync(http, metrics, cancellationToken)).Body, name);

        await OutageProbes.WaitUntilAsync(async () => await Health() == 200, OutageProbes.Eventually, "lambda up answering 200 on /health", cancellationToken);
        var expected = new ExpectedViews();
        using var producer = new Infrastructure.ChaosProducer(host.Endpoints.Kafka, expected);
        await using var production = new Production(producer, settings.Seed, settings.FaultEvents, Before + outage + After, cancellationToken);
        await OutageProbes.WaitUntilAsync(() => Task.FromResult(CommittedOffsets.Total(committed.Read()) > 0), OutageProbes.Eventually, "first commit of the speed layer", cancellationToken);
        await Task.Delay(Before / 2, cancellationToken);

        fault.Failing = true;
        var failingAt = DateTime.UtcNow;
        log.WriteLine($"ClickHouse writes failing from {failingAt:HH:mm:ss.fff}");
        string? reason = null;
        try
        {
            await OutageProbes.WaitUntilAsync(async () =>
            {
                var (status, body) = await OutageProbes.GetAsync(http, health, cancellationToken);
                reason = body;
                return status == 503;
            }, TimeSpan.FromSeconds(30), "/health answering 503 while writes fail", cancellationToken);
            notes.Add($"/health went 503 after {(DateTime.UtcNow - failingAt).TotalSeconds:0.0} s: {reason}");
        }
        catch (TimeoutException e)
        {
            violations.Add(e.Message + "; last answer: " + reason);
        }

        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        var held = committed.Read();
        var consumedAtRed = await Metric("lambda_speed_events_in_total");
        log.WriteLine($"holding at {CommittedOffsets.Total(held)} committed");
        int red = 0, green = 0;
        long maxLag = 0;
        var moved = false;
        while (DateTime.UtcNow - failingAt < outage)
        {
            var now = committed.Read();
            if (!moved && now.Any(kv => held.GetValueOrDefault(kv.Key, -1) != kv.Value))
            {
                moved = true;
                violations.Add($"committed offsets moved while writes failed: {CommittedOffsets.Total(held)} -> {CommittedOffsets.Total(now)}");
            }

            maxLag = Math.Max(maxLag, committed.HighWatermarks() - CommittedOffsets.Total(now));
            if (await Health() == 503)
            {
                red++;
            }
            else
            {
                green++;
            }

            await Task.Delay(1000, cancellationToken);
        }

        var consumedAtEnd = await Metric("lambda_speed_events_in_total");
        notes.Add($"while writes failed: committed offsets held at {CommittedOffsets.Total(held)} records ({(moved ? "MOVED" : "unchanged")}), lag grew to {maxLag}, " +
                  $"/health 503 in {red} of {red + green} polls, records consumed {consumedAtRed} -> {consumedAtEnd}, writes refused {fault.Refused}");
        if (green > 0)
        {
            violations.Add($"/health answered 200 in {green} of {red + green} polls while writes failed");
        }

        if (consumedAtRed <= 0)
        {
            violations.Add("/metrics has no lambda_speed_events_in_total");
        }

        if (consumedAtEnd != consumedAtRed)
        {
            violations.Add($"consumption did not pause while writes failed: {consumedAtEnd - consumedAtRed} more records read");
        }

        fault.Failing = false;
        var healedAt = DateTime.UtcNow;
        log.WriteLine("ClickHouse writes succeed again");
        await production.Completion;
        log.WriteLine($"producer done: {expected.Events} events acknowledged");
        if (producer.Failed > 0)
        {
            violations.Add($"{producer.Failed} events not acknowledged by Kafka: {producer.LastError}");
        }

        await OutageProbes.WaitUntilAsync(() => Task.FromResult(committed.HighWatermarks() == CommittedOffsets.Total(committed.Read())), OutageProbes.Eventually,
            "speed layer committing every record after the fault", cancellationToken);
        await OutageProbes.WaitUntilAsync(async () => await Health() == 200, OutageProbes.Eventually, "/health answering 200 after the fault", cancellationToken);
        notes.Add($"caught up {(DateTime.UtcNow - healedAt).TotalSeconds:0.0} s after writes succeeded again; flush failures {await Metric("lambda_speed_flush_failures_total")}");
        var (_, peak) = OutageProbes.Memory(Environment.ProcessId);
        notes.Add($"peak RSS of the whole test process (lambda up in-process): {peak / (1024 * 1024)} MiB");

        var comparison = await MergedViewCheck.CompareAsync(fault, expected, cancellationToken);
        if (fault.Refused == 0)
        {
            violations.Add("no write was refused: the fault did not reach the platform");
        }

        return OutageResult.From(Fault, fault.Refused, expected, comparison, notes, violations);
    }
}

/// <summary>
/// A ClickHouse whose writes (both <c>InsertAsync</c> overloads, <see cref="IClickHouse.ExecuteAsync"/>) fail with a
/// transient <see cref="ClickHouseException"/> while <see cref="Failing"/> is on; queries pass through. Does not own
/// the wrapped client.
/// </summary>
public sealed class FailingWritesClickHouse(IClickHouse inner) : IClickHouse
{
    private volatile bool _failing;
    private long _refused;

    /// <summary>While true every write throws.</summary>
    public bool Failing
    {
        get => _failing;
        set => _failing = value;
    }

    /// <summary>Writes refused so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <inheritdoc />
    public string BackendName => inner.BackendName;

    /// <inheritdoc />
    public Task ExecuteAsync(string sql, CancellationToken cancellationToken = default)
    {
        Refuse(sql);
        return inner.ExecuteAsync(sql, cancellationToken);
    }

    /// <inheritdoc />
    public Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default) => inner.QueryAsync(sql, format, cancellationToken);

    /// <inheritdoc />
    public Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default)
    {
        Refuse("INSERT INTO " + table);
        return inner.InsertAsync(table, columns, rows, cancellationToken);
    }

    /// <inheritdoc />
    public Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default)
    {
        Refuse("INSERT INTO " + table);
        return inner.InsertAsync(table, columns, rows, write, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask; // the host owns the wrapped client

    private void Refuse(string sql)
    {
        if (_failing)
        {
            Interlocked.Increment(ref _refused);
            throw new ClickHouseException("injected fault: ClickHouse refuses writes (disk or table unavailable)", null, sql, isTransient: true);
        }
    }
}
