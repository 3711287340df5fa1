using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Serving.Views;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// HTTP caching of view answers on the whole platform (`lambda up`): a weak ETag, 304 Not Modified while the answer is the same
/// (with the current lag in a header), a new ETag once new events change it, Cache-Control from freshness, and repeated
/// requests answered from memory without querying ClickHouse again.
/// </summary>
public sealed class HttpCachingTests : IAsyncLifetime
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "lambda-httpcache-" + Guid.NewGuid().ToString("N"));
    private PlatformHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _host = await PlatformHost.StartAsync(new UpOptions { DataDirectory = _data, Http = "127.0.0.1:" + Probe.FreePort(), Partitions = 2 });
        _http = new HttpClient { BaseAddress = new Uri(_host.Endpoints.Http) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task SameAnswer_Is304WithItsETag_AndNewEvents_GiveANewETag()
    {
        var now = DateTime.UtcNow;
        var hour = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerHour), DateTimeKind.Utc);
        var url = $"/v1/views/checkout_revenue?from={Probe.Iso(hour)}&to={Probe.Iso(hour.AddHours(1))}";
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 5, Users = 50 });
        using var producer = new EventProducer(_host.Endpoints.Kafka);
        void Send(int n)
        {
            for (var i = 0; i < n; i++)
            {
                producer.Send(generator.Next("user.action.checkout", hour.AddSeconds(i % 60)).Json);
            }

            producer.Flush();
        }

        Send(100);
        var first = await UntilAsync(url, orders => orders == 100);
        Assert.NotNull(first.ETag);
        Assert.True(first.ETag!.IsWeak);
        Assert.True(first.CacheControl is { Private: true, NoCache: true, MaxAge: null }); // the hour is above W: revalidate every time

        // Revalidation: 304, no body, the current lag in a header; the rows come from memory.
        var cache = _host.App.Services.GetRequiredService<ViewsEndpoints>().Cache;
        var queries = cache.Queries;
        for (var i = 0; i < 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.IfNoneMatch.Add(first.ETag);
            using var response = await _http.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
            Assert.Equal(first.ETag, response.Headers.ETag);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
            Assert.True(response.Headers.Contains(ViewsEndpoints.SpeedLagHeader));
        }

        Assert.Equal(queries, cache.Queries);

        // New events in the range: the answer changes, and so does its tag.
        Send(20);
        var second = await UntilAsync(url, orders => orders == 120, first.ETag);
        Assert.NotEqual(first.ETag, second.ETag);
    }

    [Fact]
    public async Task RangeBelowW_MayBeKeptByClients_ForTheCacheTtl()
    {
        var clickHouse = _host.App.Services.GetRequiredService<LambdaPlatform.ClickHouse.IClickHouse>();
        var w = DateTime.UtcNow.Date.AddDays(-1);
        await clickHouse.ExecuteAsync($"INSERT INTO lambda_watermarks (view, watermark, updatedAt) VALUES ('checkout_revenue', toDateTime({(long)(w - DateTime.UnixEpoch).TotalSeconds}, 'UTC'), now())");
        using var below = await _http.GetAsync($"/v1/views/checkout_revenue?from={Probe.Iso(w.AddDays(-1))}&to={Probe.Iso(w)}");
        below.EnsureSuccessStatusCode();
        Assert.True(below.Headers.CacheControl is { Private: true, NoCache: false, MaxAge.TotalSeconds: 60 });
        using var across = await _http.GetAsync($"/v1/views/checkout_revenue?from={Probe.Iso(w.AddDays(-1))}&to={Probe.Iso(w.AddHours(1))}");
        Assert.True(across.Headers.CacheControl is { Private: true, NoCache: true });
    }

    /// <summary>GETs <paramref name="url"/> (revalidating <paramref name="etag"/>) until a 200 whose orders satisfy <paramref name="done"/> and whose lag is known.</summary>
    private async Task<(EntityTagHeaderValue? ETag, CacheControlHeaderValue? CacheControl)> UntilAsync(string url, Func<long, bool> done, EntityTagHeaderValue? etag = null)
    {
        (EntityTagHeaderValue?, CacheControlHeaderValue?) result = default;
        await Probe.PollAsync(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (etag is not null)
            {
                request.Headers.IfNoneMatch.Add(etag);
            }

            using var response = await _http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.NotModified)
            {
                return false;
            }

            response.EnsureSuccessStatusCode();
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var orders = doc.RootElement.GetProperty("rows").EnumerateArray().Sum(r => r.GetProperty("orders").GetInt64());
            result = (response.Headers.ETag, response.Headers.CacheControl);
            return done(orders) && doc.RootElement.GetProperty("speedLagSeconds").ValueKind == JsonValueKind.Number;
        }, TimeSpan.FromSeconds(60));
        return result;
    }
}
