using System.Globalization;
using System.Text.Json;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// Every measure kind is served by the HTTP API and the merged view of the whole platform (`lambda up` composition),
/// on generated traffic whose optional fields (currency, coupon) are often missing or null: top-k as (item, count)
/// pairs, min and max, null where no event had a value, and each value equal to an independent computation.
/// </summary>
public sealed class MeasuresServedTests : IAsyncLifetime
{
    private const string View = """
        view: checkout_mix
        description: Every measure kind over checkout fields that are often missing.
        events: [user.action.checkout]
        bucket: 1h
        dimensions:
          store: payload.location
        measures:
          orders: count
          revenue: sum(payload.cartValue)
          smallest: min(payload.cartValue)
          largest: max(payload.cartValue)
          coupons: distinct(payload.coupon)
          median: quantile(payload.cartValue, 0.5)
          top_currencies: topk(payload.currency, 2)
          top_coupons: topk(payload.coupon, 3)
        """;

    private readonly string _data = Path.Combine(Path.GetTempPath(), "lambda-measures-" + Guid.NewGuid().ToString("N"));
    private readonly string _views = Path.Combine(Path.GetTempPath(), "lambda-measures-views-" + Guid.NewGuid().ToString("N"));
    private PlatformHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_views);
        await File.WriteAllTextAsync(Path.Combine(_views, "checkout_mix.yaml"), View);
        _host = await PlatformHost.StartAsync(new UpOptions { DataDirectory = _data, Http = "127.0.0.1:" + Probe.FreePort(), Partitions = 2, ViewsDirectory = _views });
        _http = new HttpClient { BaseAddress = new Uri(_host.Endpoints.Http) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        Directory.Delete(_data, recursive: true);
        Directory.Delete(_views, recursive: true);
    }

    [Fact]
    public async Task EveryMeasureKind_IsServedAsJson_AndEqualsAnIndependentComputation()
    {
        var now = DateTime.UtcNow;
        var hour = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerHour), DateTimeKind.Utc);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 31, Users = 300 });
        var sent = Enumerable.Range(0, 1_500).Select(i => generator.Next("user.action.checkout", hour.AddMilliseconds(i * 1_000L % Math.Max(1, (long)(now - hour).TotalMilliseconds)))).ToList();
        using (var producer = new EventProducer(_host.Endpoints.Kafka))
        {
            sent.ForEach(e => producer.Send(e.Json));
            producer.Flush();
        }

        var clickHouse = _host.App.Services.GetRequiredService<IClickHouse>();
        await Probe.PollAsync(async () => await Probe.ScalarAsync(clickHouse, "SELECT sum(orders) FROM checkout_mix") >= sent.Count, TimeSpan.FromSeconds(90));

        // Independent truth per store: the generator's JSON read with System.Text.Json; missing and null skipped.
        var truth = sent.Select(e => JsonDocument.Parse(e.Json).RootElement.GetProperty("payload").Clone()).GroupBy(p => p.GetProperty("location").GetString()!)
            .ToDictionary(g => g.Key, g =>
            {
                var carts = g.Select(p => p.GetProperty("cartValue").GetDouble()).Order().ToList();
                var currencies = g.Select(p => Text(p, "currency")).OfType<string>().ToList();
                var coupons = g.Select(p => Text(p, "coupon")).OfType<string>().ToList();
                return (Orders: g.Count(), Revenue: carts.Sum(), Smallest: carts[0], Largest: carts[^1], Coupons: coupons.Distinct(StringComparer.Ordinal).Count(),
                    Median: carts[(int)Math.Ceiling(0.5m * carts.Count) - 1], Currencies: Top(currencies, 2), TopCoupons: Top(coupons, 3));
            });

        var answer = JsonDocument.Parse(await _http.GetStringAsync($"/v1/views/checkout_mix?from={Iso(hour)}&to={Iso(hour.AddHours(1))}")).RootElement;
        var rows = answer.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(truth.Count, rows.Count);
        foreach (var row in rows)
        {
            var t = truth[row.GetProperty("store").GetString()!];
            Assert.Equal(t.Orders, row.GetProperty("orders").GetInt32());
            Assert.Equal(t.Revenue, row.GetProperty("revenue").GetDouble(), 6);
            Assert.Equal(t.Smallest, row.GetProperty("smallest").GetDouble());
            Assert.Equal(t.Largest, row.GetProperty("largest").GetDouble());
            Assert.InRange(row.GetProperty("coupons").GetInt32(), t.Coupons - 1, t.Coupons + 1);
            Assert.InRange(row.GetProperty("median").GetDouble(), t.Median * 0.99, t.Median * 1.01);
            Assert.Equal(t.Currencies, Pairs(row.GetProperty("top_currencies")));
            Assert.Equal(t.TopCoupons, Pairs(row.GetProperty("top_coupons")));
        }

        // Rolled up to a day: count, sum, min and max add up; distinct, quantile and top-k are left out, with the reason.
        var daily = JsonDocument.Parse(await _http.GetStringAsync($"/v1/views/checkout_mix?from={Iso(hour.Date)}&to={Iso(hour.Date.AddDays(1))}&granularity=1d")).RootElement;
        Assert.Equal(["coupons", "median", "top_currencies", "top_coupons"], daily.GetProperty("omitted").EnumerateArray().Select(o => o.GetString()![..o.GetString()!.IndexOf(':', StringComparison.Ordinal)]));
        var dayRow = daily.GetProperty("rows").EnumerateArray().First(r => r.GetProperty("store").GetString() == truth.Keys.First());
        Assert.Equal(truth[truth.Keys.First()].Smallest, dayRow.GetProperty("smallest").GetDouble());

        // Analysts' SQL: the merged view has the pairs as two arrays.
        await using var stream = await clickHouse.QueryAsync("SELECT top_currencies_items, top_currencies_counts FROM checkout_mix ORDER BY store LIMIT 1", "JSONEachRow");
        using var reader = new StreamReader(stream);
        var first = JsonDocument.Parse(await reader.ReadLineAsync() ?? "{}").RootElement;
        Assert.Equal(JsonValueKind.Array, first.GetProperty("top_currencies_items").ValueKind);
    }

    private static string? Text(JsonElement payload, string name) =>
        payload.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static List<(string, int)> Top(List<string> values, int k) =>
        [.. values.GroupBy(v => v, StringComparer.Ordinal).Select(g => (g.Key, g.Count())).OrderByDescending(x => x.Item2).ThenBy(x => x.Key, StringComparer.Ordinal).Take(k)];

    private static List<(string, int)> Pairs(JsonElement array) =>
        [.. array.EnumerateArray().Select(p => (p.GetProperty("item").GetString()!, p.GetProperty("count").GetInt32()))];

    private static string Iso(DateTime time) => Probe.Iso(time);
}
