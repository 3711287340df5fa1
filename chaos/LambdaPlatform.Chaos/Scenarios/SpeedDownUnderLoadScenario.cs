using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The speed layer (<c>lambda speed</c>, a child process) SIGKILLed and kept down for <see cref="ChaosSettings.SpeedOutage"/> while
/// the API (<c>lambda serve --no-jobs</c>, another process) answers <see cref="ChaosSettings.ApiRequestsPerSecond"/> view queries a
/// second (open loop: each request leaves on schedule, whatever the earlier ones take); events keep arriving throughout. Then the
/// speed layer is started again.
/// </summary>
/// <remarks>
/// Checked (<see cref="ApiUnderLoadCheck"/>): every request is answered 2xx — from ClickHouse, the API needs nothing of the speed
/// process; every answer carries <c>speedLagSeconds</c>, which grows with the clock while the speed layer is down (the answers say
/// they are stale) and falls back to its healthy value after the restart; p50 and p99 latency go into the report. Then, once every
/// event is in, the merged views equal the exact answer. Injected: the requests answered while the speed layer was down (measured).
/// </remarks>
public sealed class SpeedDownUnderLoadScenario : IChaosScenario
{
    private const int Partitions = 4;
    private const string View = "checkout_revenue";
    private static readonly TimeSpan Before = TimeSpan.FromSeconds(6);

    /// <inheritdoc />
    public string Fault => "speed layer: down 60 s while the API serves 50 requests/s";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var outage = settings.SpeedOutage;
        var logs = settings.Folder("speed-down/logs");
        var events = settings.FaultEvents / 5; // the load is the API's: events only keep the speed layer's progress moving
        var clock = new ElapsedLog(log);
        void Log(string line) => clock.Line(line);
        Log($"speed down under load: seed {settings.Seed}, {events:N0} events, speed layer down {outage.TotalSeconds:0} s under {settings.ApiRequestsPerSecond} requests/s; logs in {logs}");

        using var broker = ChaosBroker.Start(Partitions);
        await using var serving = await ServingServer.StartAsync(settings.Folder("speed-down/clickhouse"), cancellationToken);
        var environment = new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString };
        string[] speedArgs = ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString];
        var port = OutageProbes.FreePort();
        // One dashboard's query, repeated: the range of every event of the run (current timestamps), fixed, so the API may answer
        // from its cache until a change marker of the range (a flush) drops the cached rows.
        var from = DateTime.UtcNow.AddMinutes(-5);
        var url = string.Create(CultureInfo.InvariantCulture,
            $"http://127.0.0.1:{port}/v1/views/{View}?from={from:yyyy-MM-ddTHH:mm:00Z}&to={from.AddHours(2):yyyy-MM-ddTHH:mm:00Z}");
        await using var api = LambdaProcess.Start("serve", ["serve", "--no-jobs", "--clickhouse", serving.ConnectionString, "--http", string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}")],
            Path.Combine(logs, "serve.log"), environment);
        var speed = LambdaProcess.Start("speed", speedArgs, Path.Combine(logs, "speed.log"), environment);
        try
        {
            using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            await OutageProbes.WaitUntilAsync(async () => !api.HasExited && (await OutageProbes.GetAsync(probe, $"http://127.0.0.1:{port}/health", cancellationToken)).Status == 200,
                OutageProbes.Eventually, "lambda serve answering /health (log: " + api.LogPath + ")", cancellationToken);

            // Events with current timestamps all along: the speed layer's newest event time follows the clock while it runs.
            var expected = new ExpectedViews();
            using var producer = new ChaosProducer(broker.BootstrapServers, expected);
            await using var production = new Production(producer, settings.Seed, events, Before + outage + Before + Before, cancellationToken);
            await OutageProbes.WaitUntilAsync(async () => Lag((await OutageProbes.GetAsync(probe, url, cancellationToken)).Body) is not null,
                OutageProbes.Eventually, "an answer with speedLagSeconds (the speed layer flushed)", cancellationToken);
            Log("the speed layer flushes and the API answers; load starts");

            SpeedDownWindow window;
            int exit;
            IReadOnlyList<ApiAnswer> answers;
            await using (var load = new ApiLoad(url, settings.ApiRequestsPerSecond))
            {
                await Task.Delay(Before, cancellationToken);
                await speed.KillAsync();
                var killedAt = DateTime.UtcNow;
                exit = speed.ExitCode;
                Log($"speed layer SIGKILLed (exit {exit}); {load.Sent} requests sent so far");
                await Task.Delay(outage, cancellationToken);
                await speed.DisposeAsync();
                speed = LambdaProcess.Start("speed", speedArgs, Path.Combine(logs, "speed.log"), environment);
                window = new SpeedDownWindow(killedAt, DateTime.UtcNow);
                Log($"speed layer started again after {window.Down.TotalSeconds:F1} s; {load.Sent} requests sent so far");

                // Load until the answers show the lag back to its healthy value (or the check says it never came back).
                try
                {
                    await OutageProbes.WaitUntilAsync(() => Task.FromResult(ApiUnderLoadCheck.Check(load.Answers, window).RecoveredAfterSeconds is not null),
                        OutageProbes.Eventually, "speedLagSeconds back to its healthy value", cancellationToken);
                    await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                }
                catch (TimeoutException e)
                {
                    Log(e.Message);
                }

                answers = await load.StopAsync();
            }

            var served = ApiUnderLoadCheck.Check(answers, window);
            Log($"load stopped: {served.Requests} requests, {served.Failed} failed, p50 {served.P50Ms:F0} ms, p99 {served.P99Ms:F0} ms");

            await production.Completion;
            Log($"{expected.Events:N0} events acknowledged; waiting for the speed layer");
            using (var progress = new GroupProgress(broker.BootstrapServers, "speed", LambdaPlatform.Kafka.Topics.Events, Partitions))
            {
                await progress.WaitCaughtUpAsync(OutageProbes.Eventually, "restarted speed layer (log: " + speed.LogPath + ")", cancellationToken);
            }

            var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
            var violations = new List<string>(served.Problems);
            if (exit != 137)
            {
                violations.Add($"the speed layer's kill did not land as a SIGKILL (exit {exit})");
            }

            if (producer.Failed > 0)
            {
                violations.Add($"{producer.Failed} events not acknowledged by Kafka: {producer.LastError}");
            }

            violations.AddRange(LambdaProcess.ExitedOnTheirOwn(api, speed));

            var notes = new List<string>
            {
                string.Create(CultureInfo.InvariantCulture,
                    $"speed layer down {window.Down.TotalSeconds:F1} s (SIGKILL, exit {exit}); {served.Requests} requests at {settings.ApiRequestsPerSecond}/s, {served.Failed} failed, {served.ServedWhileDown} answered while down, {answers.Count(a => a.FromCache)} from the API's cache; latency p50 {served.P50Ms:F0} ms, p99 {served.P99Ms:F0} ms (p99 while down {served.P99WhileDownMs:F0} ms)"),
                string.Create(CultureInfo.InvariantCulture,
                    $"speedLagSeconds: at most {served.LagBeforeSeconds:F1} s before the kill; grew {served.LagGrowthSeconds:F1} s in {served.ClockWhileDownSeconds:F1} s while down (highest {served.MaxLagWhileDownSeconds:F1} s); back within {served.LagBeforeSeconds + ApiUnderLoadCheck.RecoveredSlack.TotalSeconds:F1} s {(served.RecoveredAfterSeconds is { } r ? r.ToString("F1", CultureInfo.InvariantCulture) + " s after the restart" : "never")}"),
                string.Create(CultureInfo.InvariantCulture,
                    $"once every event was in: {view.EventsInView:N0} events in the merged view, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsWrong} of {view.CellsCompared:N0} cells wrong; wall time {clock.Elapsed.TotalSeconds:F0} s"),
            };
            var result = OutageResult.From(Fault, served.ServedWhileDown, expected, view, notes, violations);
            return result with
            {
                Figures = new Dictionary<string, double>
                {
                    ["downSeconds"] = Math.Round(window.Down.TotalSeconds, 1),
                    ["requests"] = served.Requests,
                    ["requestsFailed"] = served.Failed,
                    ["requestsServedWhileDown"] = served.ServedWhileDown,
                    ["latencyP50Ms"] = Math.Round(served.P50Ms, 1),
                    ["latencyP99Ms"] = Math.Round(served.P99Ms, 1),
                    ["latencyP99WhileDownMs"] = Math.Round(served.P99WhileDownMs, 1),
                    ["speedLagBeforeSeconds"] = served.LagBeforeSeconds,
                    ["speedLagGrowthWhileDownSeconds"] = Math.Round(served.LagGrowthSeconds, 3),
                    ["speedLagMaxWhileDownSeconds"] = served.MaxLagWhileDownSeconds,
                    ["speedLagRecoveredAfterSeconds"] = Math.Round(served.RecoveredAfterSeconds ?? -1, 1),
                },
            };
        }
        finally
        {
            await speed.DisposeAsync();
        }
    }

    /// <summary>The <c>speedLagSeconds</c> of a view answer, or null when it is absent, null or the body is not JSON.</summary>
    internal static double? Lag(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("speedLagSeconds", out var lag) && lag.ValueKind == JsonValueKind.Number
                ? lag.GetDouble()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// GET requests to one URL at a fixed rate, open loop (each leaves at its time, however long the earlier ones take), from
    /// creation until <see cref="StopAsync"/>; every answer recorded with its latency, status and <c>speedLagSeconds</c>.
    /// </summary>
    private sealed class ApiLoad : IAsyncDisposable
    {
        private readonly HttpClient _http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 1_000, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = TimeSpan.FromSeconds(10),
        };

        private readonly ConcurrentQueue<ApiAnswer> _answers = new();
        private readonly ConcurrentDictionary<int, Task> _inFlight = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Uri _url;
        private readonly Task _loop;
        private int _sent;

        public ApiLoad(string url, int perSecond)
        {
            _url = new Uri(url);
            _loop = Task.Run(() => RunAsync(perSecond));
        }

        public int Sent => Volatile.Read(ref _sent);

        /// <summary>The answers so far (a snapshot).</summary>
        public IReadOnlyCollection<ApiAnswer> Answers => _answers.ToArray();

        /// <summary>Stops sending, waits for the answers still due, returns every one.</summary>
        public async Task<IReadOnlyList<ApiAnswer>> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            await Task.WhenAll(_inFlight.Values);
            return [.. _answers.OrderBy(a => a.SentAt)];
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _http.Dispose();
            _stop.Dispose();
        }

        private async Task RunAsync(int perSecond)
        {
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; !_stop.IsCancellationRequested; i++)
            {
                var due = TimeSpan.FromSeconds((double)i / perSecond) - Stopwatch.GetElapsedTime(started);
                if (due > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(due, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                var n = i;
                Interlocked.Increment(ref _sent);
                _inFlight[n] = Task.Run(async () =>
                {
                    _answers.Enqueue(await SendAsync());
                    _inFlight.TryRemove(n, out _);
                });
            }
        }

        private async Task<ApiAnswer> SendAsync()
        {
            var sentAt = DateTime.UtcNow;
            var watch = Stopwatch.StartNew();
            try
            {
                using var response = await _http.GetAsync(_url);
                var body = await response.Content.ReadAsStringAsync();
                var status = (int)response.StatusCode;
                var hit = response.Headers.TryGetValues("X-Lambda-Cache", out var cache) && cache.Contains("hit", StringComparer.Ordinal);
                return new ApiAnswer(sentAt, watch.Elapsed, status, Lag(body), response.IsSuccessStatusCode ? null : body[..Math.Min(body.Length, 200)], hit);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return new ApiAnswer(sentAt, watch.Elapsed, 0, null, e.Message);
            }
        }
    }
}
