using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving.Views;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The HTTP API over a day of 1-minute checkout buckets, at 1, 16 and 64 concurrent clients (<c>LAMBDA_BENCH_API_CLIENTS</c>):
/// cached GETs (one URL, answered from the cache, whose TTL is made short so that each run crosses expiries: the answer is
/// refreshed ahead and <c>api.cached…clickhouse_queries</c> counts the queries behind the run), uncached GETs (a new URL each, so every one reaches ClickHouse), and
/// the API's SQL run directly on the host's ClickHouse at the same concurrency (the baseline: <c>direct.query…</c>). Names
/// carry the level (<c>api.cached.c16.p99_ms</c>); one client has the plain names (<c>api.cached.p99_ms</c>). The platform
/// host opens its own chDB, so this runs in a child process (the bench process keeps one chDB data path).
/// </summary>
internal static class ApiEndToEnd
{
    public const string ChildFlag = "--api-child";

    /// <summary>
    /// The API's cache TTL here: short, so every cached run (five times the requests of the others, a few seconds) crosses TTL
    /// expiries, each refreshed ahead or waited for.
    /// </summary>
    private static readonly TimeSpan CacheTtl = TimeSpan.FromSeconds(1);
    private const string Store = "berlin";

    /// <summary>Runs <see cref="ChildAsync"/> in a child process and returns its figures.</summary>
    public static Task<List<BenchFigure>> RunInChildAsync() => Harness.RunChildAsync<List<BenchFigure>>([ChildFlag]);

    public static async Task<int> ChildAsync(string output)
    {
        var data = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-api-" + Guid.NewGuid().ToString("N"));
        var port = FreePort();
        var figures = new List<BenchFigure>();
        try
        {
            await using (var host = await PlatformHost.StartAsync(new UpOptions
            {
                DataDirectory = data, Http = $"127.0.0.1:{port}",
                ViewsApi = new ViewsApiOptions { CacheTtl = CacheTtl, StatusTtl = CacheTtl },
            }))
            {
                figures = await MeasureAsync(host, port, BenchSettings.FromEnvironment());
            }

            await File.WriteAllTextAsync(output, JsonSerializer.Serialize(figures));
            return 0;
        }
        finally
        {
            Harness.DeleteFolder(data);
        }
    }

    private static async Task<List<BenchFigure>> MeasureAsync(PlatformHost host, int port, BenchSettings settings)
    {
        var clickHouse = host.App.Services.GetRequiredService<IClickHouse>();
        var views = host.App.Services.GetRequiredService<IReadOnlyList<ViewDefinition>>();
        var view = new ViewSql(views.Single(v => v.Name == "checkout_revenue"));
        var dayEnd = DateTime.UtcNow.AddTicks(-(DateTime.UtcNow.Ticks % TimeSpan.TicksPerMinute));
        var dayStart = dayEnd.AddDays(-1);
        await LoadDayAsync(clickHouse, view, dayStart, dayEnd);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        string Url(DateTime to) => $"/v1/views/checkout_revenue?store={Store}&from={Iso(dayStart)}&to={Iso(to)}";

        // Check the answer covers the day, and warm up every path.
        using (var doc = JsonDocument.Parse(await http.GetStringAsync(Url(dayEnd))))
        {
            var rows = doc.RootElement.GetProperty("rows").GetArrayLength();
            Harness.Log($"API answer for {Store} over the day: {rows} rows");
            if (rows != 1440)
            {
                throw new InvalidOperationException($"expected 1440 one-minute buckets, got {rows}");
            }
        }

        for (var i = 0; i < 100; i++)
        {
            await GetAsync(http, Url(dayEnd.AddSeconds(-i - 1)));
        }

        var (query, _, problem) = ViewQuery.Parse(view, new QueryCollection(new Dictionary<string, StringValues>
        {
            ["store"] = Store, ["from"] = Iso(dayStart), ["to"] = Iso(dayEnd),
        }), DateTime.UtcNow);
        var sql = query?.ToSql() ?? throw new InvalidOperationException(problem);
        for (var i = 0; i < 50; i++)
        {
            await DirectAsync(clickHouse, sql);
        }

        var figures = new List<BenchFigure>();
        var requests = settings.ApiRequests;
        var nextUncached = 0; // every uncached request of the run asks for a URL never asked before
        foreach (var clients in settings.ApiClients)
        {
            var level = clients == 1 ? string.Empty : $".c{clients}";
            var cache = host.App.Services.GetRequiredService<ViewsEndpoints>().Cache;
            var queriesBefore = cache.Queries;
            var cached = await TimeAllAsync(clients, requests * 5, _ => GetAsync(http, Url(dayEnd)));
            var refreshes = cache.Queries - queriesBefore;
            var first = nextUncached;
            var uncached = await TimeAllAsync(clients, requests, i => GetAsync(http, Url(dayEnd.AddSeconds(first + i + 1))));
            nextUncached += requests;
            var direct = await TimeAllAsync(clients, requests, _ => DirectAsync(clickHouse, sql));

            var directP99 = new BenchFigure($"direct.query{level}.p99_ms", Harness.Percentile(direct.Ms, 0.99), "ms");
            figures.Add(directP99);
            figures.Add(new BenchFigure($"direct.query{level}.p50_ms", Harness.Percentile(direct.Ms, 0.50), "ms"));
            foreach (var (name, run) in new[] { ("api.cached", cached), ("api.uncached", uncached) })
            {
                figures.Add(new BenchFigure($"{name}{level}.p99_ms", Harness.Percentile(run.Ms, 0.99), "ms").ComparedWith(directP99));
                figures.Add(new BenchFigure($"{name}{level}.p50_ms", Harness.Percentile(run.Ms, 0.50), "ms"));
                figures.Add(new BenchFigure($"{name}{level}.p999_ms", Harness.Percentile(run.Ms, 0.999), "ms"));
                figures.Add(new BenchFigure($"{name}{level}.requests_per_s", run.PerSecond, "req/s"));
            }

            figures.Add(new BenchFigure($"api.cached{level}.clickhouse_queries", refreshes, "queries"));
            Harness.Log($"API at {clients} client(s), {requests:N0} requests each ({refreshes} ClickHouse queries behind the cached run, TTL {CacheTtl.TotalMilliseconds} ms): p99 cached {Harness.Percentile(cached.Ms, 0.99):0.00} ms, uncached {Harness.Percentile(uncached.Ms, 0.99):0.00} ms, direct {directP99.Value:0.00} ms");
        }

        return figures;
    }

    /// <summary>One day of 1-minute buckets for every store, loaded as batch rows below the watermark W = day end.</summary>
    private static async Task LoadDayAsync(IClickHouse clickHouse, ViewSql view, DateTime dayStart, DateTime dayEnd)
    {
        foreach (var statement in view.CreateServingObjects)
        {
            await clickHouse.ExecuteAsync(statement);
        }

        var start = ToUnix(dayStart);
        await clickHouse.ExecuteAsync($"""
            INSERT INTO {view.BatchTable} (bucket, store, orders, revenue, buyers, p99_cart)
            SELECT toDateTime({start} + intDiv(number, 8) * 60, 'UTC'),
                   ['berlin', 'paris', 'london', 'madrid', 'rome', 'vienna', 'amsterdam', 'warsaw'][(number % 8) + 1],
                   toUInt64(10 + number % 17), 100.5 + number % 300, toUInt64(5 + number % 11), 250.25 + number % 100
            FROM numbers({1440 * 8})
            """);
        await clickHouse.ExecuteAsync($"INSERT INTO {view.WatermarkTableName} (view, watermark, updatedAt) VALUES ({ViewSql.Literal(view.View.Name)}, toDateTime({ToUnix(dayEnd)}, 'UTC'), now())");
    }

    private static async Task GetAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync();
        await body.CopyToAsync(Stream.Null);
    }

    private static async Task DirectAsync(IClickHouse clickHouse, string sql)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated");
        await stream.CopyToAsync(Stream.Null);
    }

    /// <summary><paramref name="requests"/> calls made by <paramref name="clients"/> concurrent loops; the latency of each, and calls per second overall.</summary>
    private static async Task<(double[] Ms, double PerSecond)> TimeAllAsync(int clients, int requests, Func<int, Task> request)
    {
        var ms = new double[requests];
        var next = -1;
        var total = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            for (var i = Interlocked.Increment(ref next); i < requests; i = Interlocked.Increment(ref next))
            {
                var started = Stopwatch.GetTimestamp();
                await request(i);
                ms[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }));

        return (ms, requests / total.Elapsed.TotalSeconds);
    }

    private static string Iso(DateTime t) => t.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static long ToUnix(DateTime t) => (long)(t - DateTime.UnixEpoch).TotalSeconds;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
