using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Confluent.Kafka;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;
using Microsoft.Extensions.Logging.Abstractions;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The speed layer end to end through the dev broker into chDB (<c>speed.e2e.events_per_s</c> against a bare
/// Confluent consumer, <c>consume.bare.events_per_s</c>), and its freshness at a steady rate (<c>speed.freshness.p99_s</c>).
/// </summary>
internal sealed class SpeedEndToEnd(IClickHouse clickHouse, EventSchemaRegistry schemas)
{
    private const int Events = 200_000;
    private const int Repeats = 3;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    public async Task<List<BenchFigure>> RunAsync()
    {
        var figures = new List<BenchFigure>();
        await using var broker = DevBroker.Start(new DevBrokerOptions());

        var (topic, dlq, count) = Produce(broker);
        var bare = new List<double>();
        var e2e = new List<double>();
        for (var r = 0; r < Repeats; r++)
        {
            bare.Add(count / ConsumeBare(broker, topic, count).TotalSeconds);
            e2e.Add(count / (await ConsumeSpeedAsync(broker, topic, dlq, count)).TotalSeconds);
            Harness.Log($"run {r + 1}: bare {bare[^1]:N0}/s, e2e {e2e[^1]:N0}/s over {count:N0} events");
        }

        var bareFigure = new BenchFigure("consume.bare.events_per_s", Harness.Median(bare), "events/s");
        figures.Add(bareFigure);
        figures.Add(new BenchFigure("speed.e2e.events_per_s", Harness.Median(e2e), "events/s").ComparedWith(bareFigure));

        var (p50, p99, n) = await FreshnessAsync(broker);
        Harness.Log($"freshness over {n:N0} events after warm-up: p50 {p50:0.000} s, p99 {p99:0.000} s");
        figures.Add(new BenchFigure("speed.freshness.p99_s", p99, "s"));
        figures.Add(new BenchFigure("speed.freshness.p50_s", p50, "s"));
        return figures;
    }

    /// <summary>Produces the events into a new 4-partition topic and checks the broker still holds every one.</summary>
    private static (string Topic, string Dlq, int Count) Produce(DevBroker broker)
    {
        var count = Events;
        for (var attempt = 0; ; attempt++)
        {
            var topic = "bench-e2e-" + Guid.NewGuid().ToString("N")[..8];
            broker.CreateTopic(topic, 4);
            broker.CreateTopic(topic + ".dlq", 4);
            var generator = new EventGenerator(new EventGeneratorOptions { Seed = 7 });
            var start = DateTime.UtcNow.AddMinutes(-50);
            using (var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build())
            {
                for (var i = 0; i < count; i++)
                {
                    var e = generator.Next(start.AddMilliseconds(i * 10L));
                    ProduceWithBackpressure(producer, topic, e);
                }

                producer.Flush(TimeSpan.FromSeconds(120));
            }

            var held = Held(broker, topic);
            if (held == count)
            {
                return (topic, topic + ".dlq", count);
            }

            Harness.Log($"the broker holds only {held:N0} of {count:N0} events; retrying with fewer");
            if (attempt == 3)
            {
                throw new InvalidOperationException("the dev broker keeps dropping events");
            }

            count = (int)(count * 0.75);
        }
    }

    private static void ProduceWithBackpressure(IProducer<string, byte[]> producer, string topic, GeneratedEvent e)
    {
        while (true)
        {
            try
            {
                producer.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
                return;
            }
            catch (ProduceException<string, byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(10));
            }
        }
    }

    private static long Held(DevBroker broker, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, "bench-wm-" + Guid.NewGuid())).Build();
        long held = 0;
        for (var p = 0; p < 4; p++)
        {
            var w = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10));
            if (w.Low.Value > 0)
            {
                return -1;
            }

            held += w.High.Value - w.Low.Value;
        }

        return held;
    }

    /// <summary>A plain Confluent consumer reading every event and nothing else.</summary>
    private static TimeSpan ConsumeBare(DevBroker broker, string topic, int count)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, "bench-bare-" + Guid.NewGuid())).Build();
        var stopwatch = Stopwatch.StartNew();
        consumer.Subscribe(topic);
        long read = 0;
        while (read < count)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } record && record.Message is not null)
            {
                read++;
            }

            if (stopwatch.Elapsed > Deadline)
            {
                throw new TimeoutException($"bare consumer read only {read:N0} of {count:N0}");
            }
        }

        var elapsed = stopwatch.Elapsed;
        consumer.Close();
        return elapsed;
    }

    private IReadOnlyList<ViewDefinition> Views()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        return [.. ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), schemas).Select(v => v with { Name = v.Name + "_" + suffix })];
    }

    private SpeedConsumer NewConsumer(DevBroker broker, string topic, string dlq, SpeedMetrics metrics) =>
        new(new SpeedOptions { BootstrapServers = broker.BootstrapServers, Topic = topic, DeadLetterTopic = dlq, GroupId = "bench-speed-" + Guid.NewGuid() },
            schemas, SpeedSinks.Create(clickHouse, Views(), schemas, metrics), metrics, NullLogger<SpeedConsumer>.Instance);

    /// <summary>The speed consumer with the standard sinks, from start until every event is flushed to chDB.</summary>
    private async Task<TimeSpan> ConsumeSpeedAsync(DevBroker broker, string topic, string dlq, int count)
    {
        using var metrics = new SpeedMetrics();
        using var consumer = NewConsumer(broker, topic, dlq, metrics);
        var stopwatch = Stopwatch.StartNew();
        await consumer.StartAsync(CancellationToken.None);
        while (consumer.EventsFlushed < count)
        {
            if (stopwatch.Elapsed > Deadline)
            {
                throw new TimeoutException($"speed consumer flushed only {consumer.EventsFlushed:N0} of {count:N0}");
            }

            await Task.Delay(5);
        }

        var elapsed = stopwatch.Elapsed;
        await consumer.StopAsync(CancellationToken.None);
        return elapsed;
    }

    /// <summary>20,000 events/s with current timestamps for 20 s; p50/p99 of per-event freshness after a 3 s warm-up.</summary>
    private async Task<(double P50, double P99, int Count)> FreshnessAsync(DevBroker broker)
    {
        const int Rate = 20_000;
        var duration = TimeSpan.FromSeconds(20);
        var warmUp = TimeSpan.FromSeconds(3);
        var topic = "bench-fresh-" + Guid.NewGuid().ToString("N")[..8];
        broker.CreateTopic(topic, 4);
        broker.CreateTopic(topic + ".dlq", 4);

        var clock = Stopwatch.StartNew();
        var producing = TimeSpan.MaxValue;
        var samples = new ConcurrentQueue<(TimeSpan At, double Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SpeedMetrics.MeterName && instrument.Name == "lambda.speed.freshness")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => samples.Enqueue((clock.Elapsed, value)));
        listener.Start();

        using var metrics = new SpeedMetrics();
        using var consumer = NewConsumer(broker, topic, topic + ".dlq", metrics);
        await consumer.StartAsync(CancellationToken.None);

        // Let the consumer join and create its tables before the clock starts.
        using (var warm = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build())
        {
            var e = new EventGenerator(new EventGeneratorOptions { Seed = 3 }).Next(DateTime.UtcNow);
            warm.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
            warm.Flush(TimeSpan.FromSeconds(10));
        }

        var waited = Stopwatch.StartNew();
        while (consumer.EventsFlushed < 1 && waited.Elapsed < Deadline)
        {
            await Task.Delay(20);
        }

        long produced = 1;
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 9 });
        using (var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build())
        {
            var started = clock.Elapsed;
            producing = started;
            while (clock.Elapsed - started < duration)
            {
                var due = (long)((clock.Elapsed - started).TotalSeconds * Rate);
                while (produced - 1 < due)
                {
                    ProduceWithBackpressure(producer, topic, generator.Next(DateTime.UtcNow));
                    produced++;
                }

                producer.Poll(TimeSpan.Zero);
                Thread.Sleep(1);
            }

            producer.Flush(TimeSpan.FromSeconds(60));
        }

        waited.Restart();
        while (consumer.EventsFlushed < produced && waited.Elapsed < Deadline)
        {
            await Task.Delay(20);
        }

        await consumer.StopAsync(CancellationToken.None);
        listener.Dispose();
        var values = samples.Where(s => s.At >= producing + warmUp).Select(s => s.Value).ToList();
        Harness.Log($"freshness: produced {produced:N0} at {Rate:N0}/s, flushed {consumer.EventsFlushed:N0}");
        return (Harness.Percentile(values, 0.50), Harness.Percentile(values, 0.99), values.Count);
    }
}
