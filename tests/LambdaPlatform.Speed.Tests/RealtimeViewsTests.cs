using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Confluent.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Sketches;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed.Views;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Speed.Tests;

/// <summary>
/// The real-time views end to end: generated events through the dev broker, the speed consumer, and the
/// `&lt;view&gt;_rt` tables in chDB, compared with an independent computation over the same events.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class RealtimeViewsTests(PipelineFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Views_EqualExactComputation_WithDuplicatesInTheInput()
    {
        var (topic, dlq) = fixture.NewTopics(partitions: 4);
        var views = Views();
        var events = Produce(topic, count: 20_000, seed: 11, duplicateEvery: 25);
        await using (await StartAsync(topic, dlq, views, "speed-" + Guid.NewGuid()))
        {
            await WaitForCountAsync(views, events);
        }

        await AssertMatchesTruthAsync(views, events);
    }

    [Fact]
    public async Task Views_StayExact_WhenTheConsumerCrashesBetweenFlushAndCommit()
    {
        var (topic, dlq) = fixture.NewTopics(partitions: 4);
        var views = Views();
        var group = "speed-" + Guid.NewGuid();
        var events = Produce(topic, count: 10_000, seed: 12, duplicateEvery: 0);

        // First run: every flush becomes durable, then the process "dies" before committing any offset.
        var crash = new CrashAfterWriteSink();
        var first = await StartAsync(topic, dlq, views, group, crash);
        await PollAsync(() => Task.FromResult(crash.Crashed));
        await first.DisposeAsync();
        Assert.True(await CountAsync(views) > 0, "the first run must have made rows durable before its crash");

        // Second run, same group: Kafka re-delivers from the last commit; the tables say what is already counted.
        await using (await StartAsync(topic, dlq, views, group))
        {
            await WaitForCountAsync(views, events);
        }

        await AssertMatchesTruthAsync(views, events);
    }

    [Fact]
    public async Task Views_FromTwoInstances_EqualOneInstance()
    {
        var (topicOne, dlqOne) = fixture.NewTopics(partitions: 4);
        var (topicTwo, dlqTwo) = fixture.NewTopics(partitions: 4);
        var one = Views();
        var two = Views();
        var events = Produce(topicOne, count: 12_000, seed: 13, duplicateEvery: 0);
        Produce(topicTwo, count: 12_000, seed: 13, duplicateEvery: 0);

        await using (await StartAsync(topicOne, dlqOne, one, "speed-" + Guid.NewGuid()))
        {
            await WaitForCountAsync(one, events);
        }

        var group = "speed-" + Guid.NewGuid();
        await using (await StartAsync(topicTwo, dlqTwo, two, group))
        await using (await StartAsync(topicTwo, dlqTwo, two, group))
        {
            await WaitForCountAsync(two, events);
        }

        for (var v = 0; v < one.Count; v++)
        {
            // Sums may differ in the last bits: floating-point addition in another order (one writer or two).
            static string Row(string[] r) => string.Join('|', r.Select(f => f.Contains('.', StringComparison.Ordinal)
                && double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x.ToString("G12", CultureInfo.InvariantCulture) : f));
            var a = (await RowsAsync(new ViewSql(one[v]).RealtimeMergedSelect())).Select(Row).ToList();
            var b = (await RowsAsync(new ViewSql(two[v]).RealtimeMergedSelect())).Select(Row).ToList();
            Assert.True(a.SequenceEqual(b), $"{one[v].Name}: only in one instance: {string.Join("; ", a.Except(b).Take(5))} / only in two: {string.Join("; ", b.Except(a).Take(5))}");
        }
    }

    /// <summary>The shipped views, renamed with a unique suffix so that each test has its own tables.</summary>
    private IReadOnlyList<ViewDefinition> Views()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        return [.. ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), fixture.Schemas).Select(v => v with { Name = v.Name + "_" + suffix })];
    }

    private static readonly DateTime Start = DateTime.UtcNow.AddMinutes(-50);

    private List<GeneratedEvent> Produce(string topic, int count, int seed, int duplicateEvery)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed, Users = 3_000 });
        var start = Start;
        var events = new List<GeneratedEvent>();
        using var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(fixture.Broker.BootstrapServers)).Build();
        for (var i = 0; i < count; i++)
        {
            var e = generator.Next(start.AddMilliseconds(i * 100L));
            events.Add(e);
            producer.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
            if (duplicateEvery > 0 && i % duplicateEvery == 0)
            {
                events.Add(e);
                producer.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
            }
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        return events;
    }

    private async Task<RunningConsumer> StartAsync(string topic, string dlq, IReadOnlyList<ViewDefinition> views, string group, IEventSink? extra = null)
    {
        var sink = new RealtimeViewsSink(fixture.ClickHouse, views, fixture.Schemas);
        await sink.InitializeAsync();
        IReadOnlyList<IEventSink> sinks = extra is null ? [sink] : [sink, extra];
        var consumer = new SpeedConsumer(
            new SpeedOptions { BootstrapServers = fixture.Broker.BootstrapServers, Topic = topic, DeadLetterTopic = dlq, GroupId = group },
            fixture.Schemas, sinks, new SpeedMetrics(), NullLogger<SpeedConsumer>.Instance);
        await consumer.StartAsync(CancellationToken.None);
        return new RunningConsumer(consumer);
    }

    private async Task<long> CountAsync(IReadOnlyList<ViewDefinition> views, string view = "activity_by_type", string measure = "events")
    {
        var definition = views.Single(v => v.Name.StartsWith(view, StringComparison.Ordinal));
        var text = await fixture.ScalarAsync($"SELECT sum({measure}) FROM ({new ViewSql(definition).RealtimeMergedSelect()})");
        return text is "" or "\\N" ? 0 : long.Parse(text, CultureInfo.InvariantCulture);
    }

    /// <summary>Waits until every view holds every distinct event (each view is a separate insert of a flush).</summary>
    private async Task WaitForCountAsync(IReadOnlyList<ViewDefinition> views, List<GeneratedEvent> events)
    {
        var distinct = events.DistinctBy(e => e.EventId).ToList();
        var checkouts = distinct.Count(e => e.EventType == "user.action.checkout");
        await PollAsync(async () => await CountAsync(views) >= distinct.Count && await CountAsync(views, "checkout_revenue", "orders") >= checkouts);
    }

    private async Task AssertMatchesTruthAsync(IReadOnlyList<ViewDefinition> views, List<GeneratedEvent> events)
    {
        var distinct = events.DistinctBy(e => e.EventId).ToList();

        // activity_by_type: events per hour, type and source; users within HLL error.
        var activity = new ViewSql(views.Single(v => v.Name.StartsWith("activity_by_type", StringComparison.Ordinal)));
        var activityTruth = distinct.GroupBy(e => (Hour(e.Timestamp), e.EventType, Source(e)))
            .ToDictionary(g => g.Key, g => (Events: g.LongCount(), Users: g.Select(e => e.UserId).Distinct().Count()));
        var activityRows = await RowsAsync($"SELECT toUnixTimestamp(bucket), eventType, source, events, users FROM ({activity.RealtimeMergedSelect()})");
        Assert.Equal(activityTruth.Count, activityRows.Count);
        foreach (var row in activityRows)
        {
            var key = (DateTime.UnixEpoch.AddSeconds(long.Parse(row[0], CultureInfo.InvariantCulture)), row[1], row[2]);
            var truth = activityTruth[key];
            Assert.Equal(truth.Events, long.Parse(row[3], CultureInfo.InvariantCulture));
            AssertWithin(truth.Users, double.Parse(row[4], CultureInfo.InvariantCulture), 4 * HyperLogLog.StandardError);
        }

        // checkout_revenue: orders and revenue exact, buyers within HLL error, p99 within DDSketch accuracy.
        var checkout = new ViewSql(views.Single(v => v.Name.StartsWith("checkout_revenue", StringComparison.Ordinal)));
        var checkouts = distinct.Where(e => e.EventType == "user.action.checkout").Select(e => (Event: e, Payload: JsonDocument.Parse(e.Json).RootElement.GetProperty("payload"))).ToList();
        var checkoutTruth = checkouts.GroupBy(c => (Minute(c.Event.Timestamp), c.Payload.GetProperty("location").GetString()!))
            .ToDictionary(g => g.Key, g => (
                Orders: g.LongCount(),
                Revenue: g.Sum(c => c.Payload.GetProperty("cartValue").GetDecimal()),
                Buyers: g.Select(c => c.Event.UserId).Distinct().Count(),
                P99: g.Select(c => c.Payload.GetProperty("cartValue").GetDouble()).Order().ElementAt((int)Math.Ceiling(0.99m * g.Count()) - 1)));
        var checkoutRows = await RowsAsync($"SELECT toUnixTimestamp(bucket), store, orders, revenue, buyers, p99_cart FROM ({checkout.RealtimeMergedSelect()})");
        Assert.Equal(checkoutTruth.Count, checkoutRows.Count);
        foreach (var row in checkoutRows)
        {
            var truth = checkoutTruth[(DateTime.UnixEpoch.AddSeconds(long.Parse(row[0], CultureInfo.InvariantCulture)), row[1])];
            Assert.Equal(truth.Orders, long.Parse(row[2], CultureInfo.InvariantCulture));
            Assert.Equal((double)truth.Revenue, double.Parse(row[3], CultureInfo.InvariantCulture), 6);
            AssertWithin(truth.Buyers, double.Parse(row[4], CultureInfo.InvariantCulture), 4 * HyperLogLog.StandardError);
            AssertWithin(truth.P99, double.Parse(row[5], CultureInfo.InvariantCulture), DDSketch.RelativeAccuracy);
        }
    }

    private static void AssertWithin(double truth, double estimate, double relative) =>
        Assert.True(Math.Abs(estimate - truth) <= (relative * truth) + 1, $"estimate {estimate} vs exact {truth} (allowed ±{relative:P1})");

    private async Task<List<string[]>> RowsAsync(string sql)
    {
        var text = await fixture.ScalarAsync(sql + " ORDER BY 1, 2, 3");
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))];
    }

    private static string Source(GeneratedEvent e) => JsonDocument.Parse(e.Json).RootElement.GetProperty("metadata").GetProperty("source").GetString()!;

    private static DateTime Hour(DateTime t) => new(t.Ticks - (t.Ticks % TimeSpan.TicksPerHour), DateTimeKind.Utc);

    private static DateTime Minute(DateTime t) => new(t.Ticks - (t.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc);

    private static async Task PollAsync(Func<Task<bool>> condition)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(stopwatch.Elapsed < Deadline, "condition not met before the deadline");
            await Task.Delay(200);
        }
    }

    /// <summary>Lets the batch become durable in the sinks before it, then "kills" the consumer before it commits.</summary>
    private sealed class CrashAfterWriteSink : IEventSink
    {
        public bool Crashed { get; private set; }

        public string Name => "crash";

        public Task InitializeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task WriteAsync(IReadOnlyList<ConsumedEvent> batch, CancellationToken cancellationToken = default)
        {
            Crashed = true;
            throw new OperationCanceledException("simulated crash between flush and commit");
        }
    }

    private sealed class RunningConsumer(SpeedConsumer consumer) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await consumer.StopAsync(CancellationToken.None);
            }
            catch (OperationCanceledException)
            {
                // The simulated crash.
            }

            consumer.Dispose();
        }
    }
}
