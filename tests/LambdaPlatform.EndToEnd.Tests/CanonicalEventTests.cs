using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Kafka;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// The checkout producers send today (issue 10's canonical event, line items filled in) through Kafka into the whole
/// platform (`lambda up` composition): every one lands in the raw <c>events</c> table and is counted in
/// <c>checkout_revenue</c>'s real-time rows exactly as an independent computation says, and none reaches
/// <c>events.dlq</c>. Checkouts in the old generator's shape (schema v1) travel alongside and are counted too.
/// </summary>
public sealed class CanonicalEventTests : IAsyncLifetime
{
    private const int Partitions = 4;
    private const int CanonicalCount = 2_400;
    private const int OldShapeCount = 300;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);
    private static readonly string[] Currencies = ["EUR", "USD", "GBP", "JPY"];
    private static readonly string[] Sources = ["mobile-app", "web", "pos"];
    private static readonly string[] AppVersions = ["2.5.0", "2.5.1", "2.6.0"];

    private readonly string _data = Path.Combine(Path.GetTempPath(), "lambda-canonical-" + Guid.NewGuid().ToString("N"));
    private PlatformHost _host = null!;

    public async Task InitializeAsync() =>
        _host = await PlatformHost.StartAsync(new UpOptions { DataDirectory = _data, Http = "127.0.0.1:" + Probe.FreePort(), Partitions = Partitions });

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    private sealed record Checkout(string Json, Guid EventId, DateTime Timestamp, string Store, decimal CartValue, int Lines, bool OldShape);

    [Fact]
    public async Task CanonicalCheckouts_AreCountedInEventsAndCheckoutRevenue_AndNoneIsDeadLettered()
    {
        // Today, up to 20 minutes back, in time order (the real-time side is checked, not the batch).
        var now = DateTime.UtcNow;
        var start = now.AddMinutes(-20) < now.Date ? now.Date : now.AddMinutes(-20);
        var random = new Random(10);
        var checkouts = new List<Checkout>();
        for (var i = 0; i < CanonicalCount + OldShapeCount; i++)
        {
            var at = start + ((now - start) * i / (CanonicalCount + OldShapeCount));
            at = new DateTime(at.Ticks - (at.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
            checkouts.Add(i % 9 == 4 ? OldShape(random, at) : Canonical(random, at)); // one in nine: 300
        }

        var canonical = checkouts.Where(c => !c.OldShape).ToList();
        Assert.True(canonical.Count >= 2_000, $"{canonical.Count} canonical checkouts");
        Assert.Contains(canonical, c => !c.Json.Contains("\"currency\"", StringComparison.Ordinal));
        Assert.Contains(canonical, c => c.Json.Contains("\"currency\"", StringComparison.Ordinal));

        using (var producer = new EventProducer(_host.Endpoints.Kafka))
        {
            foreach (var c in checkouts)
            {
                producer.Send(Encoding.UTF8.GetBytes(c.Json));
            }

            producer.Flush();
            Assert.Equal(checkouts.Count, producer.Delivered);
        }

        // Every record reaches one of the two ends; then none may have gone to the dead-letter topic.
        var clickHouse = _host.App.Services.GetRequiredService<IClickHouse>();
        await Probe.PollAsync(async () => await Probe.ScalarAsync(clickHouse, "SELECT count() FROM events FINAL") + DeadLetterCount() >= checkouts.Count, Deadline);
        var deadLetters = ReadDeadLetters();
        Assert.True(deadLetters.Count == 0, $"{deadLetters.Count} checkouts dead-lettered, e.g. {string.Join(" | ", deadLetters.Take(3))}");

        // The raw events table: each checkout once, with its app version and its payload as sent (line items kept).
        Assert.Equal(checkouts.Count, await Probe.ScalarAsync(clickHouse, "SELECT uniqExact(eventId) FROM events FINAL WHERE eventType = 'user.action.checkout'"));
        var versions = (await Probe.QueryAsync(clickHouse, "SELECT version, count() FROM events FINAL GROUP BY version ORDER BY version"))
            .ToDictionary(r => r[0], r => long.Parse(r[1], CultureInfo.InvariantCulture));
        Assert.Equal(OldShapeCount, versions.GetValueOrDefault("1"));
        Assert.Equal(canonical.Count, AppVersions.Sum(v => versions.GetValueOrDefault(v)));
        Assert.Equal(canonical.Sum(c => c.Lines), await Probe.ScalarAsync(clickHouse, "SELECT sum(length(JSONExtractArrayRaw(payload, 'items'))) FROM events FINAL WHERE version != '1'"));

        // checkout_revenue: orders and revenue per minute and store equal the sums over what was sent; all real time.
        await Probe.PollAsync(async () => await Probe.ScalarAsync(clickHouse, "SELECT sum(orders) FROM checkout_revenue") >= checkouts.Count, Deadline);
        var truth = checkouts
            .GroupBy(c => (Bucket: new DateTime(c.Timestamp.Ticks - (c.Timestamp.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc), c.Store))
            .ToDictionary(g => g.Key, g => (Orders: g.LongCount(), Revenue: g.Sum(c => c.CartValue)));
        Assert.True(truth.Keys.Select(k => k.Store).Distinct().Count() >= 10, "the checkouts must come from many stores");
        var rows = await Probe.QueryAsync(clickHouse, "SELECT toUnixTimestamp(bucket), store, orders, revenue, side FROM checkout_revenue ORDER BY bucket, store");
        Assert.Equal(truth.Count, rows.Count);
        foreach (var row in rows)
        {
            var key = (DateTime.UnixEpoch.AddSeconds(long.Parse(row[0], CultureInfo.InvariantCulture)), row[1]);
            Assert.True(truth.TryGetValue(key, out var expected), $"unexpected row {string.Join(' ', row)}");
            Assert.Equal(expected.Orders, long.Parse(row[2], CultureInfo.InvariantCulture));
            Assert.Equal((double)expected.Revenue, double.Parse(row[3], CultureInfo.InvariantCulture), 6);
            Assert.Equal("realtime", row[4]);
        }

        // The dead-letter path works (so its emptiness above means something): an unknown event type lands there.
        using (var producer = new EventProducer(_host.Endpoints.Kafka))
        {
            producer.Send(Encoding.UTF8.GetBytes(canonical[0].Json.Replace("user.action.checkout", "user.action.teleport", StringComparison.Ordinal)));
            producer.Flush();
        }

        await Probe.PollAsync(() => Task.FromResult(DeadLetterCount() >= 1), Deadline);
        var sentinel = Assert.Single(ReadDeadLetters());
        Assert.Contains("unknown event type 'user.action.teleport'", sentinel, StringComparison.Ordinal);
    }

    /// <summary>The canonical checkout, formatted as in issue 10, with 1–4 line items and optional currency and coupon.</summary>
    private static Checkout Canonical(Random random, DateTime at)
    {
        var lines = 1 + random.Next(4);
        var items = new List<string>();
        var cartValue = 0m;
        for (var i = 0; i < lines; i++)
        {
            var quantity = 1 + random.Next(3);
            var price = random.Next(99, 25_000) / 100m;
            cartValue += quantity * price;
            items.Add(string.Create(CultureInfo.InvariantCulture, $$"""{"sku": "SKU-{{random.Next(1, 500)}}", "quantity": {{quantity}}, "price": {{price}}}"""));
        }

        var store = "store-" + (5670 + random.Next(12)).ToString(CultureInfo.InvariantCulture);
        var optional = random.Next(10) switch
        {
            < 4 => string.Empty, // no currency: the store's own
            var n => $", \"currency\": \"{Currencies[n % Currencies.Length]}\"",
        };
        optional += random.Next(10) switch
        {
            0 => ", \"coupon\": null",
            1 => ", \"coupon\": \"XMAS24\"",
            _ => string.Empty,
        };
        var id = Guid.NewGuid();
        var json = string.Create(CultureInfo.InvariantCulture,
            $$$"""{"eventId": "{{{id}}}", "eventType": "user.action.checkout", "timestamp": "{{{at:yyyy-MM-dd'T'HH:mm:ss'Z'}}}", "userId": "user-{{{10_000 + random.Next(600)}}}", "payload": {"cartValue": {{{cartValue}}}, "items": [{{{string.Join(", ", items)}}}], "location": "{{{store}}}"{{{optional}}}}, "metadata": {"source": "{{{Sources[random.Next(Sources.Length)]}}}", "version": "{{{AppVersions[random.Next(AppVersions.Length)]}}}"}}""");
        return new Checkout(json, id, at, store, cartValue, lines, OldShape: false);
    }

    /// <summary>A checkout as the generator wrote it before the canonical shape: schema v1, metadata.version "1".</summary>
    private static Checkout OldShape(Random random, DateTime at)
    {
        var store = "store-" + (5670 + random.Next(12)).ToString(CultureInfo.InvariantCulture);
        var cartValue = random.Next(500, 40_000) / 100m;
        var id = Guid.NewGuid();
        var json = string.Create(CultureInfo.InvariantCulture,
            $$$"""{"eventId":"{{{id}}}","eventType":"user.action.checkout","timestamp":"{{{at:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}}}","userId":"u{{{random.Next(600):D6}}}","payload":{"location":"{{{store}}}","cartValue":{{{cartValue}}},"currency":"EUR","items":{{{1 + random.Next(8)}}}},"metadata":{"source":"web","version":"1"}}""");
        return new Checkout(json, id, at, store, cartValue, 0, OldShape: true);
    }

    private long DeadLetterCount()
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(KafkaDefaults.ConsumerConfig(_host.Endpoints.Kafka, "dlq-count-" + Guid.NewGuid())).Build();
        return Enumerable.Range(0, Partitions).Sum(p =>
        {
            var offsets = consumer.QueryWatermarkOffsets(new TopicPartition(Topics.DeadLetter, p), TimeSpan.FromSeconds(10));
            return offsets.High.Value - offsets.Low.Value;
        });
    }

    /// <summary>Every record on the dead-letter topic, as its <c>reason</c> header.</summary>
    private List<string> ReadDeadLetters()
    {
        var expected = DeadLetterCount();
        var reasons = new List<string>();
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(KafkaDefaults.ConsumerConfig(_host.Endpoints.Kafka, "dlq-read-" + Guid.NewGuid())).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(Topics.DeadLetter, p, Offset.Beginning)));
        var stopwatch = Stopwatch.StartNew();
        while (reasons.Count < expected)
        {
            Assert.True(stopwatch.Elapsed < Deadline, $"read {reasons.Count} of {expected} dead letters before the deadline");
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } record)
            {
                reasons.Add(Encoding.UTF8.GetString(record.Message.Headers.GetLastBytes("reason")));
            }
        }

        return reasons;
    }



}
