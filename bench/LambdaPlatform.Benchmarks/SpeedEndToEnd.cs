using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Confluent.Kafka;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The speed layer end to end through the dev broker into chDB: <c>speed.e2e.events_per_s</c> (one
/// <see cref="SpeedConsumer"/> with the standard sinks, from start until every event of the topic is flushed) and
/// <c>speed.e2e.2_instances.events_per_s</c> (two instances in one group, until together they flushed every event);
/// and freshness at a steady, clock-driven produce rate (<see cref="FreshnessAsync"/>).
/// </summary>
internal sealed class SpeedEndToEnd(IClickHouse clickHouse, EventSchemaRegistry schemas, DevBroker broker)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    /// <summary>
    /// Time from starting <paramref name="instances"/> consumers (one group) until they flushed every event of <paramref name="topic"/>,
    /// the seconds a flush was in flight (from hand-off to durable in every sink: <c>lambda.speed.flush.duration</c>, summed over
    /// instances; the consumer reads the next batch meanwhile), and a warning if the count they reported included re-deliveries while some record
    /// was still missing.
    /// </summary>
    public async Task<(TimeSpan Elapsed, double FlushSeconds, string? Warning)> ConsumeAsync(BenchTopic topic, int instances)
    {
        double flushSeconds = 0;
        var sum = new Lock();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "lambda.speed.flush.duration")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, seconds, _, _) =>
        {
            lock (sum)
            {
                flushSeconds += seconds;
            }
        });
        listener.Start();

        var views = Views();
        var group = "bench-speed-" + Guid.NewGuid();
        var metrics = new List<SpeedMetrics>();
        var consumers = new List<SpeedConsumer>();
        for (var i = 0; i < instances; i++)
        {
            var m = new SpeedMetrics();
            metrics.Add(m);
            consumers.Add(NewConsumer(topic.Name, topic.DeadLetterTopic, group, views, m));
        }

        try
        {
            var stopwatch = Stopwatch.StartNew();
            foreach (var consumer in consumers)
            {
                await consumer.StartAsync(CancellationToken.None);
            }

            await Harness.PollAsync(() => Task.FromResult(consumers.Sum(c => c.EventsFlushed) >= topic.Count), Deadline,
                () => $"{instances} speed consumer(s) flushing {topic.Count:N0} events (flushed {consumers.Sum(c => c.EventsFlushed):N0})");
            var elapsed = stopwatch.Elapsed;
            foreach (var consumer in consumers)
            {
                await consumer.StopAsync(CancellationToken.None);
            }

            var flushed = consumers.Sum(c => c.EventsFlushed);
            string? warning = null;
            if (flushed != topic.Count)
            {
                // Re-deliveries while the group assigned partitions: the clock stopped on a count that includes some
                // events twice, so check that every distinct record made it.
                await using var stream = await clickHouse.QueryAsync($"SELECT uniqExact(kafkaPartition, kafkaOffset) FROM {RawEventsTable.DefaultName}", "TabSeparated");
                var distinct = long.Parse((await new StreamReader(stream).ReadToEndAsync()).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                Harness.Log($"{instances} instance(s) flushed {flushed:N0} events for {topic.Count:N0} in the topic (re-deliveries); {distinct:N0} distinct records in the raw table");
                if (distinct < topic.Count)
                {
                    warning = $"{instances} speed instance(s) had flushed only {distinct:N0} distinct records of {topic.Count:N0} when the clock stopped";
                    Harness.Warn(warning);
                }
            }

            lock (sum)
            {
                return (elapsed, flushSeconds, warning);
            }
        }
        finally
        {
            foreach (var consumer in consumers)
            {
                consumer.Dispose();
            }

            foreach (var m in metrics)
            {
                m.Dispose();
            }

            await DropAsync(views);
        }
    }

    /// <summary>
    /// Produces at a steady <paramref name="rate"/> (events/s, current timestamps, clock-driven) for <paramref name="duration"/>
    /// while one speed consumer runs; p50/p99 of per-event freshness (event time to visible in ClickHouse, the consumer's
    /// own histogram) after a 3 s warm-up, and the rate the producer actually reached.
    /// </summary>
    public async Task<(double P50, double P99, int Samples, double ProducedRate)> FreshnessAsync(int rate, TimeSpan duration)
    {
        var warmUp = TimeSpan.FromSeconds(3);
        var topic = "bench-fresh-" + Guid.NewGuid().ToString("N")[..8];
        broker.CreateTopic(topic, 4);
        broker.CreateTopic(topic + ".dlq", 4);

        var clock = Stopwatch.StartNew();
        var producing = TimeSpan.MaxValue;
        var samples = new ConcurrentQueue<(TimeSpan At, double Value)>();
        using var metrics = new SpeedMetrics();
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

        var views = Views();
        using var consumer = NewConsumer(topic, topic + ".dlq", "bench-speed-" + Guid.NewGuid(), views, metrics);
        try
        {
            await consumer.StartAsync(CancellationToken.None);

            // Let the consumer join and create its tables before the clock starts.
            using (var warm = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build())
            {
                var e = new EventGenerator(new EventGeneratorOptions { Seed = 3 }).Next(DateTime.UtcNow);
                warm.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
                warm.Flush(TimeSpan.FromSeconds(10));
            }

            await Harness.PollAsync(() => Task.FromResult(consumer.EventsFlushed >= 1), Deadline, "the freshness consumer's first flush", TimeSpan.FromMilliseconds(20));

            producing = clock.Elapsed;
            var produced = 1 + await Task.Factory.StartNew(() => ProduceSteadily(topic, rate, duration), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var producedRate = (produced - 1) / duration.TotalSeconds;

            await Harness.PollAsync(() => Task.FromResult(consumer.EventsFlushed >= produced), Deadline, $"flushing {produced:N0} events at {rate:N0}/s", TimeSpan.FromMilliseconds(20));
            await consumer.StopAsync(CancellationToken.None);
            listener.Dispose();
            var values = samples.Where(s => s.At >= producing + warmUp).Select(s => s.Value).ToList();
            Harness.Log($"freshness at {rate:N0}/s: produced {produced:N0} ({producedRate:N0}/s reached), flushed {consumer.EventsFlushed:N0}");
            return (Harness.Percentile(values, 0.50), Harness.Percentile(values, 0.99), values.Count, producedRate);
        }
        finally
        {
            await DropAsync(views);
        }
    }

    /// <summary>
    /// A clock-driven producer on its own thread: every millisecond it produces the events due by then (elapsed × rate), each
    /// stamped with the current time, so a slow moment is caught up rather than stretching the run. Returns the count produced.
    /// </summary>
    private long ProduceSteadily(string topic, int rate, TimeSpan duration)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 9 });
        using var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build();
        var started = Stopwatch.StartNew();
        long produced = 0;
        while (started.Elapsed < duration)
        {
            var due = (long)(started.Elapsed.TotalSeconds * rate);
            while (produced < due)
            {
                BenchTopic.ProduceWithBackpressure(producer, topic, generator.Next(DateTime.UtcNow));
                produced++;
            }

            producer.Poll(TimeSpan.Zero);
            Thread.Sleep(1); // a dedicated thread: the tick of the clock-driven producer
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        return produced;
    }

    private IReadOnlyList<ViewDefinition> Views()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        return [.. ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), schemas).Select(v => v with { Name = v.Name + "_" + suffix })];
    }

    private SpeedConsumer NewConsumer(string topic, string dlq, string group, IReadOnlyList<ViewDefinition> views, SpeedMetrics metrics) =>
        new(new SpeedOptions { BootstrapServers = broker.BootstrapServers, Topic = topic, DeadLetterTopic = dlq, GroupId = group },
            schemas, SpeedSinks.Create(clickHouse, views, schemas, metrics), metrics, NullLogger<SpeedConsumer>.Instance);

    /// <summary>Drops a run's view tables and empties the raw events table, so later runs do not pay for their background merges.</summary>
    private async Task DropAsync(IReadOnlyList<ViewDefinition> views)
    {
        foreach (var v in views)
        {
            var sql = new ViewSql(v);
            await clickHouse.ExecuteAsync($"DROP VIEW IF EXISTS {sql.MergedView}");
            await clickHouse.ExecuteAsync($"DROP TABLE IF EXISTS {sql.RealtimeTable}");
            await clickHouse.ExecuteAsync($"DROP TABLE IF EXISTS {sql.BatchTable}");
        }

        await clickHouse.ExecuteAsync($"TRUNCATE TABLE IF EXISTS {RawEventsTable.DefaultName}");
    }
}
