using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Hosting;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// Every metric the shipped alert rules and dashboard read is exported, under that exact name, by a running platform
/// (<c>lambda up</c> on embedded defaults): the test makes the platform do everything the rules watch — events and a
/// dead letter through Kafka, a flush that fails once, a batch run that moves W over a closed day (so the accuracy report
/// is made) and one held by an open day, API requests — then scrapes <c>/metrics</c> and checks each name (and the labels
/// the rules group by) against it. It also reads the accuracy report through <c>GET /v1/views/{view}/accuracy</c>.
/// </summary>
public sealed partial class MetricsExportedTests : IAsyncLifetime
{
    /// <summary>The labels the rules and the dashboard group or filter by, per metric (job and instance come from Prometheus).</summary>
    private static readonly Dictionary<string, string[]> Labels = new(StringComparer.Ordinal)
    {
        ["lambda_speed_lag_seconds"] = ["partition"],
        ["lambda_speed_consumer_lag"] = ["partition"],
        ["lambda_speed_events_in_total"] = ["partition"],
        ["lambda_speed_invalid_total"] = ["rule"],
        ["lambda_speed_counted_total"] = ["view"],
        ["lambda_batch_last_success_timestamp_seconds"] = ["view"],
        ["lambda_batch_runs_total"] = ["view", "outcome"],
        ["lambda_batch_watermark_held_total"] = ["view", "reason"],
        ["lambda_batch_days_total"] = ["view"],
        ["lambda_accuracy_buckets_out_of_bound"] = ["view", "measure", "kind", "exact"],
        ["lambda_accuracy_buckets_compared"] = ["view", "measure", "kind", "exact"],
        ["lambda_accuracy_relative_error_max"] = ["view", "measure"],
        ["lambda_accuracy_relative_error_mean"] = ["view", "measure"],
        ["lambda_accuracy_relative_error_bound"] = ["view", "measure", "exact"],
        ["lambda_accuracy_topk_misses"] = ["view", "measure"],
        ["http_server_request_duration_seconds_bucket"] = ["http_route", "le"],
        ["http_server_request_duration_seconds_count"] = ["http_route", "http_response_status_code"],
    };

    private TestPlatform _platform = null!;

    public async Task InitializeAsync() =>
        _platform = await TestPlatform.StartAsync(configure: services => services.DecorateClickHouse(clickHouse => new FirstInsertFails(clickHouse)));

    public async Task DisposeAsync() => await _platform.DisposeAsync();

    [Fact]
    public async Task EveryMetricTheRulesAndTheDashboardRead_IsExported_ByARunningPlatform()
    {
        // Checkouts of a closed day (two days ago) and three records that are not events.
        var day = DateOnly.FromDateTime(DateTime.UtcNow.AddDays(-2));
        var start = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        var checkouts = TestPlatform.Checkouts(600, start.AddHours(8), TimeSpan.FromSeconds(37), seed: 5);
        _platform.Produce(checkouts);
        _platform.Produce(Enumerable.Range(0, 3).Select(i => TestPlatform.Utf8("{\"eventId\": \"broken-" + i.ToString(CultureInfo.InvariantCulture))));

        // The real-time side counted them all (after the flush that failed once), then a batch run moves W over the day
        // once the archiver has published them, and reports accuracy before it drops the day's real-time rows.
        await TestPlatform.PollAsync(async () => await _platform.SqlAsync("SELECT sum(orders) FROM checkout_revenue") == checkouts.Count.ToString(CultureInfo.InvariantCulture), "real-time orders");
        await TestPlatform.PollAsync(async () =>
        {
            var results = await _platform.BatchRunAsync(new { view = "checkout_revenue" });
            return results.Any(r => r.GetProperty("day").GetString() == TestPlatform.Day(day) && r.GetProperty("watermark").ValueKind == JsonValueKind.String);
        }, "W over the closed day");
        var held = await _platform.BatchRunAsync(new { view = "checkout_revenue", day = DateOnly.FromDateTime(DateTime.UtcNow).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) });
        Assert.Contains("open for late events", Assert.Single(held).GetProperty("watermarkHeld").GetString(), StringComparison.Ordinal);

        // The report, as the API serves it: every order was counted in real time.
        var accuracy = JsonDocument.Parse(await _platform.Http.GetStringAsync("/v1/views/checkout_revenue/accuracy")).RootElement;
        var report = Assert.Single(accuracy.GetProperty("reports").EnumerateArray());
        Assert.Equal(TestPlatform.Day(day), report.GetProperty("day").GetString());
        Assert.False(report.GetProperty("warning").GetBoolean());
        var orders = report.GetProperty("measures").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "orders");
        Assert.Equal(report.GetProperty("batchRows").GetInt64(), orders.GetProperty("bucketsCompared").GetInt64());
        Assert.Equal(0, orders.GetProperty("bucketsOutOfBound").GetInt64());
        Assert.Equal(HttpStatusCode.NotFound, (await _platform.Http.GetAsync("/v1/views/nope/accuracy")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _platform.Http.GetAsync("/v1/views/checkout_revenue/accuracy?days=0")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _platform.Http.GetAsync("/v1/views/checkout_revenue")).StatusCode);

        // Scrape, and check every name the rules and the dashboard read.
        Dictionary<string, HashSet<string>> exported = [];
        await TestPlatform.PollAsync(async () =>
        {
            exported = Parse(await _platform.Http.GetStringAsync("/metrics"));
            return exported.ContainsKey("lambda_speed_flush_failures_total") && exported.ContainsKey("lambda_speed_invalid_total");
        }, "flush failure and dead letters in /metrics");
        var recorded = OpsFiles.RecordedNames();
        using var dashboard = JsonDocument.Parse(File.ReadAllText(OpsFiles.DashboardFile));
        var reads = OpsFiles.RuleExpressions().Select(e => ("rules", e))
            .Concat(OpsFiles.DashboardExpressions(dashboard.RootElement).Select(p => ("dashboard panel '" + p.Panel + "'", p.Expr)))
            .SelectMany(x => OpsFiles.MetricNames(x.Item2).Select(name => (Where: x.Item1, Name: name))).ToList();
        Assert.True(reads.Count > 20, "the expressions should read many metrics: " + reads.Count);
        var missing = reads.Where(r => !exported.ContainsKey(r.Name) && !recorded.Contains(r.Name)).Select(r => $"{r.Name} ({r.Where})").Distinct().ToList();
        Assert.True(missing.Count == 0, "not exported by the platform: " + string.Join(", ", missing) + "\nexported: " + string.Join(", ", exported.Keys.Order(StringComparer.Ordinal)));
        foreach (var (name, labels) in Labels)
        {
            Assert.True(exported.TryGetValue(name, out var have), name + " is not exported");
            Assert.All(labels, label => Assert.True(have.Contains(label), $"{name} has no label '{label}' (it has {string.Join(", ", have)})"));
        }
    }

    /// <summary>Sample names of a Prometheus text scrape, each with the label names seen on it.</summary>
    private static Dictionary<string, HashSet<string>> Parse(string scrape)
    {
        var result = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in scrape.Split('\n'))
        {
            var match = Sample().Match(line);
            if (!match.Success)
            {
                continue;
            }

            var labels = result.TryGetValue(match.Groups[1].Value, out var set) ? set : result[match.Groups[1].Value] = [];
            foreach (Match label in LabelName().Matches(match.Groups[2].Value))
            {
                labels.Add(label.Groups[1].Value);
            }
        }

        return result;
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")]
    private static partial Regex Sample();

    [GeneratedRegex("([a-zA-Z_][a-zA-Z0-9_]*)=\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex LabelName();

    /// <summary>The serving ClickHouse of the speed layer, whose first bulk insert (boxed or typed) fails (one failed flush, then retried).</summary>
    private sealed class FirstInsertFails(IClickHouse inner) : IClickHouse
    {
        private int _inserts;

        public string BackendName => inner.BackendName;

        public Task ExecuteAsync(string sql, CancellationToken cancellationToken = default) => inner.ExecuteAsync(sql, cancellationToken);

        public Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default) => inner.QueryAsync(sql, format, cancellationToken);

        public Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _inserts) == 1
                ? throw new ClickHouseException("injected: the first insert fails", 210, null, isTransient: true)
                : inner.InsertAsync(table, columns, rows, cancellationToken);

        public Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _inserts) == 1
                ? throw new ClickHouseException("injected: the first insert fails", 210, null, isTransient: true)
                : inner.InsertAsync(table, columns, rows, write, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
