using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.ClickHouse;
using LambdaPlatform.Jobs.Tests;
using LambdaPlatform.Schemas.Events;
using Npgsql;
using Xunit.Abstractions;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// The README's "Deployment" section, followed to the letter: the processes of <c>deploy/Procfile</c> (two <c>lambda speed</c>,
/// one <c>lambda archive</c>, two <c>lambda serve</c>), each reading <c>deploy/lambda.json</c> with this site's values in
/// environment variables, against a clickhouse-server 18.16 with the users and database the section creates, a PostgreSQL with
/// its role and database, and <c>lambda dev-broker</c> standing in for the Kafka cluster; every view recomputed every minute.
/// </summary>
public sealed class DeploymentTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string View = "checkout_revenue";
    private const string ApiKey = "deployment-test-key-0123456789";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "lambda-deploy-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly List<DeployedProcess> _processes = [];
    private readonly PostgresServer _postgres = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ClickHouseServerProcess _clickHouse = null!;
    private ServerClickHouse _direct = null!;
    private string _repository = null!;
    private Dictionary<string, string> _environment = null!;
    private HttpClient _http = null!;
    private string _postgresLambda = null!;
    private double _changePollSeconds;
    private readonly List<(string Name, int Port)> _serve = [];
    private readonly List<DeployedProcess> _speed = [];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        _repository = FindRepository();
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);

        // The servers: PostgreSQL and clickhouse-server 18.16 (users writer and analyst, as in the section's users.xml).
        var writerPassword = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        var postgresPassword = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        await Task.WhenAll(
            _postgres.InitializeAsync(),
            Task.Run(async () => _clickHouse = await ClickHouseServerProcess.StartAsync(new ClickHouseServerProcessOptions { WriterPassword = writerPassword })));
        _direct = new ServerClickHouse(_clickHouse.ConnectionOptions);

        // The section's setup statements.
        await _direct.ExecuteAsync("CREATE DATABASE IF NOT EXISTS lambda");
        await using (var connection = new NpgsqlConnection(_postgres.ConnectionString))
        {
            await connection.OpenAsync();
            foreach (var statement in new[] { $"CREATE ROLE lambda LOGIN PASSWORD '{postgresPassword}'", "CREATE DATABASE lambda OWNER lambda" })
            {
                await using var command = new NpgsqlCommand(statement, connection);
                await command.ExecuteNonQueryAsync();
            }
        }

        _postgresLambda = new NpgsqlConnectionStringBuilder(_postgres.ConnectionString) { Database = "lambda" }.ConnectionString;
        await File.WriteAllTextAsync(Path.Combine(_folder, "api-keys"), ApiKey + "\n");

        // The dev broker stands in for the Kafka cluster.
        var kafkaPort = Probe.FreePort();
        var broker = DeployedProcess.Start("dev-broker", ["dev-broker", "--port", kafkaPort.ToString(CultureInfo.InvariantCulture), "--partitions", "4"], _repository, new Dictionary<string, string>(), _folder);
        _processes.Add(broker);

        // This site's values, over deploy/lambda.json: the section's way of overriding the file.
        _environment = new Dictionary<string, string>
        {
            ["LAMBDA_KAFKA__BOOTSTRAPSERVERS"] = $"127.0.0.1:{kafkaPort}",
            ["LAMBDA_CLICKHOUSE__HOST"] = _clickHouse.Host,
            ["LAMBDA_CLICKHOUSE__PORT"] = _clickHouse.HttpPort.ToString(CultureInfo.InvariantCulture),
            ["LAMBDA_CLICKHOUSE__PASSWORD"] = writerPassword,
            ["LAMBDA_CLICKHOUSE__READERPASSWORD"] = string.Empty,
            ["LAMBDA_POSTGRES__HOST"] = "127.0.0.1",
            ["LAMBDA_POSTGRES__PORT"] = _postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["LAMBDA_POSTGRES__PASSWORD"] = postgresPassword,
            ["LAMBDA_VIEWS"] = Path.Combine(_repository, "schemas", "views"),
            ["LAMBDA_DATA"] = Path.Combine(_folder, "data"),
            ["LAMBDA_HTTP__APIKEYSFILE"] = Path.Combine(_folder, "api-keys"),
            ["LAMBDA_JOBS__SCHEDULE"] = "* * * * *",
            ["LAMBDA_JOBS__POLLINGINTERVALSECONDS"] = "1",
            ["LAMBDA_ARCHIVE__MAXFILEAGESECONDS"] = "2",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        _changePollSeconds = 1; // deploy/lambda.json: http.changePollSeconds

        // `lambda config check` accepts the file as this site runs it.
        var check = DeployedProcess.Start("config-check", ["config", "check", "--config", "deploy/lambda.json"], _repository, _environment, _folder);
        await WaitForExitAsync(check);

        await WaitUntilAsync(() => Task.FromResult(TcpOpen(kafkaPort)), "the dev broker listens");

        // The Procfile, scaled speed=2 archive=1 serve=2; $PORT as a Procfile runner sets it.
        var procfile = ReadProcfile(Path.Combine(_repository, "deploy", "Procfile"));
        foreach (var (name, count) in new[] { ("speed", 2), ("archive", 1), ("serve", 2) })
        {
            for (var i = 1; i <= count; i++)
            {
                var port = Probe.FreePort();
                var environment = new Dictionary<string, string>(_environment) { ["PORT"] = port.ToString(CultureInfo.InvariantCulture) };
                var arguments = procfile[name].Skip(1).Select(a => a.Replace("$PORT", environment["PORT"], StringComparison.Ordinal)).ToList();
                Assert.Equal("lambda", procfile[name][0]);
                var process = DeployedProcess.Start($"{name}-{i}", arguments, _repository, environment, _folder);
                _processes.Add(process);
                if (name == "serve")
                {
                    _serve.Add(($"serve-{i}", port));
                }
                else if (name == "speed")
                {
                    _speed.Add(process);
                }
            }
        }

        foreach (var (name, port) in _serve)
        {
            await WaitUntilAsync(async () => await StatusAsync($"http://127.0.0.1:{port}/health") == HttpStatusCode.OK, $"{name} answers /health");
        }
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        if (_direct is not null)
        {
            await _direct.DisposeAsync();
        }

        if (_clickHouse is not null)
        {
            await _clickHouse.DisposeAsync();
        }

        await _postgres.DisposeAsync();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A process may still be closing a file; the temporary folder is left for the system.
        }
    }

    [Fact]
    public async Task Deployment_AnswersExactlyAndFreshFromEveryInstance_WhenEachRoleIsItsOwnProcess()
    {
        try
        {
            await RunAsync();
        }
        catch
        {
            foreach (var process in _processes)
            {
                output.WriteLine(process.Tail());
            }

            throw;
        }
    }

    private async Task RunAsync()
    {
        var now = DateTime.UtcNow;
        var closedDay = now.Date.AddDays(-2);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 11, Users = 500 });
        var events = new List<GeneratedEvent>();
        for (var i = 0; i < 1_500; i++)
        {
            events.Add(generator.Next("user.action.checkout", closedDay.AddHours(10).AddSeconds(i * 6)));
        }

        for (var i = 0; i < 1_000; i++)
        {
            events.Add(generator.Next("user.action.checkout", now.AddMinutes(-20).AddSeconds(i * 1.1)));
        }

        var truth = Truth(events);
        using (var producer = new EventProducer(_environment["LAMBDA_KAFKA__BOOTSTRAPSERVERS"]))
        {
            foreach (var e in events)
            {
                producer.Send(e.Json);
            }

            producer.Flush();
            Assert.Equal(events.Count, producer.Delivered);
        }

        var range = $"from={Probe.Iso(closedDay)}&to={Probe.Iso(now.Date.AddDays(1))}";
        var a = _serve[0].Port;
        var b = _serve[1].Port;

        // 1. Events that went through Kafka give the same rows from both serve instances.
        await WaitUntilAsync(async () =>
        {
            var (rowsA, rowsB) = (await RowsAsync(a, range), await RowsAsync(b, range));
            return Orders(rowsA) == events.Count && rowsA.ToJsonString() == rowsB.ToJsonString();
        }, "both serve instances answer every event with the same rows");
        Log("same rows from both instances");

        // 2. /v1/sql answers a raw-body SELECT the way ClickHouse's HTTP interface does.
        const string Select = "SELECT bucket, store, orders FROM checkout_revenue ORDER BY bucket, store LIMIT 50";
        Assert.Equal(await ClickHouseAnswerAsync(Select), await SqlAsync(a, Select, "text/plain"));
        Assert.Equal(await ClickHouseAnswerAsync(Select + " FORMAT CSVWithNames"), await SqlAsync(a, Select + " FORMAT CSVWithNames", "application/sql"));
        using (var refused = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{a}/v1/sql") { Content = new StringContent(Select, Encoding.UTF8, "application/xml") })
        using (var response = await _http.SendAsync(refused))
        {
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
            Assert.Contains("text/plain", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // 3. A flush is visible from both serve instances within the stated bound, though each holds a cached answer of the
        // range for 60 s: 2 × http.changePollSeconds after the flush's marker, which follows its rows; 0.5 s more from the rows
        // being visible in ClickHouse (the marker insert and the request itself).
        var bound = TimeSpan.FromSeconds((2 * _changePollSeconds) + 0.5);
        var probeStore = "probe-" + Guid.NewGuid().ToString("N")[..8];
        var probeRange = $"store={probeStore}&from={Probe.Iso(now.AddMinutes(-10))}&to={Probe.Iso(now.AddMinutes(30))}";
        foreach (var port in new[] { a, b })
        {
            await GetAsync(port, probeRange);
            await WaitUntilAsync(async () => (await GetAsync(port, probeRange)).Cache == "hit", "the probe's empty answer is cached");
        }

        var probe = JsonNode.Parse(generator.Next("user.action.checkout", DateTime.UtcNow).Json)!;
        probe["payload"]!["location"] = probeStore;
        using (var producer = new EventProducer(_environment["LAMBDA_KAFKA__BOOTSTRAPSERVERS"]))
        {
            producer.Send(Encoding.UTF8.GetBytes(probe.ToJsonString()));
            producer.Flush();
        }

        var visibleAt = await PollAsync(async () => await Probe.ScalarAsync(_direct, $"SELECT count() FROM lambda.checkout_revenue_rt WHERE store = '{probeStore}'") > 0, "the probe flushed to ClickHouse");
        var servedAt = await Task.WhenAll(new[] { a, b }.Select(port => PollAsync(async () => (await GetAsync(port, probeRange)).Rows.Count > 0, "the probe served")));
        foreach (var served in servedAt)
        {
            Log($"probe served {(served - visibleAt).TotalMilliseconds:F0} ms after it was in ClickHouse (bound {bound.TotalMilliseconds:F0} ms)");
            Assert.True(served - visibleAt <= bound, $"served {(served - visibleAt).TotalMilliseconds:F0} ms after the flush, over the bound of {bound.TotalMilliseconds:F0} ms");
        }

        // 4. After a scheduled recompute, the merged view is exact: the closed day from the batch side, today from real time.
        await WaitUntilAsync(async () => (await AnswerAsync(a, range))["watermark"]?.GetValue<string>() is { } w && DateTime.Parse(w, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal) >= closedDay.AddDays(1),
            "a scheduled recompute moved W past the closed day");
        Log("W moved past the closed day");
        foreach (var port in new[] { a, b })
        {
            await WaitUntilAsync(async () => Exact(await RowsAsync(port, range), truth, closedDay), $"the merged view on port {port} equals the exact answer");
        }

        // 5. Each scheduled recompute ran once per tick across the two instances (Hangfire's history in PostgreSQL).
        await WaitUntilAsync(async () => (await TicksAsync()).GroupBy(t => t.RecurringId).Count(g => g.Select(t => t.Tick).Distinct().Count() >= 2) >= 2,
            "two ticks of every view's recompute in Hangfire's history");
        var ticks = await TicksAsync();
        foreach (var tick in ticks.GroupBy(t => (t.RecurringId, t.Tick)))
        {
            Assert.True(tick.Count() == 1, $"{tick.Key.RecurringId} ran {tick.Count()} times for the tick {tick.Key.Tick}");
        }

        Assert.Equal(2L, await PostgresScalarAsync("SELECT count(*) FROM hangfire.server"));
        Log($"{ticks.Count} scheduled runs, one per tick: {string.Join(", ", ticks.GroupBy(t => t.RecurringId).Select(g => $"{g.Key} x{g.Count()}"))}");

        // 6. With both speed processes stopped, speedLagSeconds in answers grows with the clock.
        foreach (var speed in _speed)
        {
            await speed.StopAsync(TimeSpan.FromSeconds(30));
        }

        var (lag1, at1) = (await LagAsync(a), _clock.Elapsed);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var (lag2, at2) = (await LagAsync(b), _clock.Elapsed);
        Log($"speedLagSeconds {lag1:F3} then {lag2:F3} ({(at2 - at1).TotalSeconds:F3} s later)");
        Assert.InRange(lag2 - lag1, (at2 - at1).TotalSeconds - 0.5, (at2 - at1).TotalSeconds + 0.5);

        // 7. When one serve instance is killed, the other keeps answering.
        var before = await RowsAsync(b, range);
        await _processes.Single(p => p.Name == _serve[0].Name).KillAsync();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(before.ToJsonString(), (await RowsAsync(b, range)).ToJsonString());
            Assert.Equal(HttpStatusCode.OK, await StatusAsync($"http://127.0.0.1:{b}/health"));
            await Task.Delay(200);
        }
    }

    private static Dictionary<(DateTime Bucket, string Store), (long Orders, double Revenue, HashSet<string> Buyers)> Truth(IEnumerable<GeneratedEvent> events)
    {
        var truth = new Dictionary<(DateTime, string), (long, double, HashSet<string>)>();
        foreach (var e in events)
        {
            using var document = JsonDocument.Parse(e.Json);
            var payload = document.RootElement.GetProperty("payload");
            var key = (new DateTime(e.Timestamp.Ticks - (e.Timestamp.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc), payload.GetProperty("location").GetString()!);
            var (orders, revenue, buyers) = truth.TryGetValue(key, out var t) ? t : (0L, 0.0, new HashSet<string>());
            buyers.Add(e.UserId);
            truth[key] = (orders + 1, revenue + payload.GetProperty("cartValue").GetDouble(), buyers);
        }

        return truth;
    }

    /// <summary>Every row equals the exact answer (orders and buyers exactly, revenue to rounding); the closed day is answered by the batch side.</summary>
    private static bool Exact(JsonArray rows, Dictionary<(DateTime Bucket, string Store), (long Orders, double Revenue, HashSet<string> Buyers)> truth, DateTime closedDay)
    {
        var seen = 0;
        foreach (var row in rows)
        {
            var bucket = DateTime.Parse(row!["bucket"]!.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            var store = row["store"]!.GetValue<string>();
            if (store.StartsWith("probe-", StringComparison.Ordinal))
            {
                continue;
            }

            if (!truth.TryGetValue((bucket, store), out var expected)
                || row["orders"]!.GetValue<long>() != expected.Orders
                || Math.Abs(row["revenue"]!.GetValue<double>() - expected.Revenue) > 1e-9 * Math.Max(1, Math.Abs(expected.Revenue))
                || (bucket < closedDay.AddDays(1) && (row["side"]!.GetValue<string>() != "batch" || row["buyers"]!.GetValue<long>() != expected.Buyers.Count)))
            {
                return false;
            }

            seen++;
        }

        return seen == truth.Count;
    }

    private static long Orders(JsonArray rows) => rows.Where(r => !r!["store"]!.GetValue<string>().StartsWith("probe-", StringComparison.Ordinal)).Sum(r => r!["orders"]!.GetValue<long>());

    private async Task<JsonObject> AnswerAsync(int port, string query)
    {
        var body = await _http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/v1/views/{View}?{query}"));
        return JsonNode.Parse(body)!.AsObject();
    }

    private async Task<JsonArray> RowsAsync(int port, string query) => (await AnswerAsync(port, query))["rows"]!.AsArray();

    private async Task<(JsonArray Rows, string? Cache)> GetAsync(int port, string query)
    {
        using var response = await _http.GetAsync(new Uri($"http://127.0.0.1:{port}/v1/views/{View}?{query}"));
        response.EnsureSuccessStatusCode();
        var rows = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["rows"]!.AsArray();
        return (rows, response.Headers.TryGetValues("X-Lambda-Cache", out var values) ? values.FirstOrDefault() : null);
    }

    private async Task<double> LagAsync(int port)
    {
        var answer = await AnswerAsync(port, $"from={Probe.Iso(DateTime.UtcNow.AddMinutes(-5))}");
        Assert.NotEmpty(answer["kafkaLag"]!.AsArray());
        return answer["speedLagSeconds"]!.GetValue<double>();
    }

    private async Task<string> SqlAsync(int port, string sql, string mediaType)
    {
        using var content = new StringContent(sql, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await _http.PostAsync(new Uri($"http://127.0.0.1:{port}/v1/sql"), content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return body;
    }

    /// <summary>What ClickHouse's own HTTP interface answers to the statement as the body (as the read-only analyst, in the platform's database).</summary>
    private async Task<string> ClickHouseAnswerAsync(string sql)
    {
        using var direct = new HttpClient();
        using var content = new StringContent(sql, Encoding.UTF8);
        using var response = await direct.PostAsync(new Uri($"http://{_clickHouse.Host}:{_clickHouse.HttpPort}/?user=analyst&database=lambda"), content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return body;
    }

    /// <summary>Every run of a recurring batch recompute in Hangfire's history: its recurring job and the tick that created it.</summary>
    private async Task<List<(string RecurringId, string Tick)>> TicksAsync()
    {
        await using var connection = new NpgsqlConnection(_postgresLambda);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT r.value, COALESCE(t.value, to_char(date_trunc('minute', j.createdat), 'YYYY-MM-DD HH24:MI'))
            FROM hangfire.job j
            JOIN hangfire.jobparameter r ON r.jobid = j.id AND r.name = 'RecurringJobId'
            LEFT JOIN hangfire.jobparameter t ON t.jobid = j.id AND t.name = 'Time'
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var ticks = new List<(string, string)>();
        while (await reader.ReadAsync())
        {
            var id = reader.GetString(0).Trim('"');
            if (id.StartsWith("batch-recompute:", StringComparison.Ordinal))
            {
                ticks.Add((id, reader.GetString(1)));
            }
        }

        return ticks;
    }

    private async Task<long> PostgresScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_postgresLambda);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private async Task<HttpStatusCode> StatusAsync(string url)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri(url));
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }

    private async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var started = _clock.Elapsed;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or ClickHouseException or NpgsqlException or TaskCanceledException)
            {
                // Not ready yet.
            }

            foreach (var process in _processes.Where(p => p.HasExited && p.Name != "config-check" && !_speed.Contains(p)))
            {
                Assert.Fail($"{process.Name} exited while waiting until {what}\n{process.Tail()}");
            }

            Assert.True(_clock.Elapsed - started < Deadline, $"not before the deadline: {what}");
            await Task.Delay(250);
        }
    }

    /// <summary>Polls fast until the condition holds; returns when (on this test's clock) it was first seen to hold.</summary>
    private async Task<TimeSpan> PollAsync(Func<Task<bool>> condition, string what)
    {
        var started = _clock.Elapsed;
        while (!await condition())
        {
            Assert.True(_clock.Elapsed - started < Deadline, $"not before the deadline: {what}");
            await Task.Delay(20);
        }

        return _clock.Elapsed;
    }

    private async Task WaitForExitAsync(DeployedProcess process)
    {
        await WaitUntilAsync(() => Task.FromResult(process.HasExited), $"{process.Name} finished");
        var log = await File.ReadAllTextAsync(process.LogPath);
        Assert.Contains("ok: ", log, StringComparison.Ordinal);
    }

    private void Log(string line) => output.WriteLine($"{_clock.Elapsed.TotalSeconds,7:F1}s {line}");

    private static bool TcpOpen(int port)
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>The processes of a Procfile: name, then the command split on spaces.</summary>
    private static Dictionary<string, string[]> ReadProcfile(string path) =>
        File.ReadAllLines(path)
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0].Trim(), p => p[1].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);

    private static string FindRepository()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "deploy", "Procfile")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("deploy/Procfile not found above " + AppContext.BaseDirectory);
    }
}
