using System.Text.Json;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Sketches;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed.Views;

namespace LambdaPlatform.Speed.Tests;

/// <summary>The real-time aggregation, without Kafka or ClickHouse, against an independent computation over the same events.</summary>
public sealed class RealtimeAggregationTests
{
    private static readonly EventSchemaRegistry Schemas = EventSchemaRegistry.LoadDefault();
    private static readonly IReadOnlyList<ViewDefinition> Views = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), Schemas);
    private static readonly DateTime Start = new(2026, 11, 28, 10, 0, 0, DateTimeKind.Utc);

    private static List<ConsumedEvent> Generate(int count, int seed, int duplicateEvery = 0)
    {
        var decoder = new EventDecoder(Schemas, new EventDecoderOptions { Clock = new FixedClock(Start.AddDays(1)) });
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed, Users = 2_000 });
        var events = new List<ConsumedEvent>();
        var offsets = new long[4];
        for (var i = 0; i < count; i++)
        {
            var g = generator.Next(Start.AddMilliseconds(i * 37L));
            Assert.True(decoder.TryDecode(g.Json, out var e, out _));
            var partition = Math.Abs(g.UserId.GetHashCode(StringComparison.Ordinal)) % 4;
            events.Add(new ConsumedEvent(e!, partition, offsets[partition]++));
            if (duplicateEvery > 0 && i % duplicateEvery == 0)
            {
                Assert.True(decoder.TryDecode(g.Json, out var dup, out _));
                events.Add(new ConsumedEvent(dup!, partition, offsets[partition]++));
            }
        }

        return events;
    }

    [Fact]
    public void Aggregate_CountsAndSumsEqualExactComputation_AndDistinctWithinError()
    {
        var events = Generate(40_000, seed: 1, duplicateEvery: 10);
        var aggregation = new RealtimeAggregation(Views, Schemas);
        var result = aggregation.Aggregate(events);
        var checkout = Views.ToList().FindIndex(v => v.Name == "checkout_revenue");

        // Independent ground truth over distinct events.
        var distinct = events.DistinctBy(e => e.Event.EventId).Where(e => e.Event.EventType == "user.action.checkout").ToList();
        var truth = distinct.GroupBy(e => (Bucket: Floor(e.Event.Timestamp), Store: Field(e, "location").GetString()!))
            .ToDictionary(g => g.Key, g => (Orders: g.Count(), Revenue: g.Sum(e => (decimal)Field(e, "cartValue").GetDouble()), Buyers: g.Select(e => e.Event.UserId).Distinct().Count()));

        // Merge the delta rows across partitions the way the serving SQL does.
        var merged = new Dictionary<(DateTime, string), (ulong Orders, double Revenue, HyperLogLog Buyers)>();
        foreach (var row in result.Rows[checkout])
        {
            // bucket, store, kafkaPartition, firstOffset, lastOffset, orders, revenue, buyers_hll, p99_cart_keys, p99_cart_counts
            var key = ((DateTime)row[0]!, (string)row[1]!);
            var m = merged.TryGetValue(key, out var existing) ? existing : (Orders: 0UL, Revenue: 0.0, Buyers: new HyperLogLog());
            m.Buyers.Merge((byte[])row[7]!);
            merged[key] = (m.Orders + (ulong)row[5]!, m.Revenue + (double)row[6]!, m.Buyers);
        }

        Assert.Equal(truth.Keys.ToHashSet(), merged.Keys.ToHashSet());
        foreach (var (key, t) in truth)
        {
            var m = merged[key];
            Assert.Equal((ulong)t.Orders, m.Orders);
            Assert.Equal((double)t.Revenue, m.Revenue, 6);
            Assert.InRange((double)m.Buyers.Estimate(), t.Buyers * (1 - (4 * HyperLogLog.StandardError)) - 1, t.Buyers * (1 + (4 * HyperLogLog.StandardError)) + 1);
        }

        Assert.Equal(events.Count - events.DistinctBy(e => e.Event.EventId).Count(), result.Duplicates);
    }

    [Fact]
    public void Aggregate_GivesIdenticalRows_WhenABatchIsRetriedBeforeCommit()
    {
        var events = Generate(5_000, seed: 2, duplicateEvery: 7);
        var aggregation = new RealtimeAggregation(Views, Schemas);
        var first = aggregation.Aggregate(events);
        var retry = aggregation.Aggregate(events);
        for (var v = 0; v < Views.Count; v++)
        {
            Assert.Equal(Render(first.Rows[v]), Render(retry.Rows[v]));
        }

        Assert.Equal(first.Duplicates, retry.Duplicates);
        aggregation.Commit(first);
        var afterCommit = aggregation.Aggregate(events);
        Assert.All(afterCommit.Rows, rows => Assert.Empty(rows)); // everything is now a duplicate of the committed batch
    }

    [Fact]
    public void Aggregate_CountsAnOldEvent_UnlessItsBucketIsBelowW_AndSkipsDurableOffsets()
    {
        var events = Generate(2_000, seed: 3);
        var aggregation = new RealtimeAggregation(Views, Schemas);
        var late = Generate(1, seed: 4)[0];
        var lateEvent = late.Event;
        var old = new ConsumedEvent(new DecodedEvent
        {
            EventId = Guid.NewGuid(), EventType = lateEvent.EventType, Timestamp = Start.AddHours(-3), UserId = lateEvent.UserId,
            Source = lateEvent.Source, Version = lateEvent.Version, Payload = lateEvent.Payload, Raw = lateEvent.Raw,
        }, events[^1].Partition, events.Where(e => e.Partition == events[^1].Partition).Max(e => e.Offset) + 1);

        // Three hours older than everything else in its partition, but above W (no batch yet): counted.
        var result = aggregation.Aggregate([.. events, old]);
        Assert.All(result.Late, l => Assert.Equal(0, l));

        // With W between the old event and the rest, only the old one is late (the batch layer owns it).
        var withW = aggregation.Aggregate([.. events, old], batchWatermark: _ => Start.AddHours(-1));
        Assert.All(withW.Late, l => Assert.True(l <= 1));
        Assert.Equal(1, withW.Late.Sum());

        // A restart after a flush that was durable but not committed: offsets at or below the table's high-water mark are not counted again.
        var skipped = aggregation.Aggregate(events, (_, _) => long.MaxValue);
        Assert.All(skipped.Rows, rows => Assert.Empty(rows));
    }

    [Fact]
    public void Aggregate_CountsEveryEventOfAClosedDay_WhenTheyArriveInRandomTimeOrder()
    {
        // A phone that was offline, a backfill, a replay: a whole day's events, shuffled, in small flushes.
        var events = Generate(6_000, seed: 6);
        var shuffled = events.OrderBy(_ => Random.Shared.Next()).ToList();
        var partitions = new long[4];
        var arrived = shuffled.Select(e => new ConsumedEvent(e.Event, e.Partition, partitions[e.Partition]++)).ToList();
        var aggregation = new RealtimeAggregation(Views, Schemas);
        var activity = Views.ToList().FindIndex(v => v.Name == "activity_by_type");
        long counted = 0;
        foreach (var chunk in arrived.Chunk(250))
        {
            var result = aggregation.Aggregate(chunk, batchWatermark: _ => Start.AddDays(-10));
            Assert.All(result.Late, l => Assert.Equal(0, l));
            counted += result.Counted[activity];
            aggregation.Commit(result);
        }

        Assert.Equal(events.Count, counted);
    }

    [Fact]
    public void Aggregate_CountsHistoryReplayedInTimeOrder_Fully()
    {
        var events = Generate(3_000, seed: 5);
        var aggregation = new RealtimeAggregation(Views, Schemas);
        var result = aggregation.Aggregate(events);
        Assert.All(result.Late, l => Assert.Equal(0, l));
        var activity = Views.ToList().FindIndex(v => v.Name == "activity_by_type");
        Assert.Equal(events.Count, result.Counted[activity]);
    }

    private static List<string> Render(IReadOnlyList<object?[]> rows) =>
        [.. rows.Select(r => string.Join("|", r.Select(v => v is System.Collections.IEnumerable e and not string ? string.Join(",", e.Cast<object>()) : Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)))).Order(StringComparer.Ordinal)];

    private static DateTime Floor(DateTime t) => new(t.Ticks - (t.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc);

    private static JsonElement Field(ConsumedEvent e, string name) => JsonDocument.Parse(e.Event.Payload).RootElement.GetProperty(name);

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
