using System.Diagnostics;
using Confluent.Kafka;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The topic every Kafka figure of a run reads: generated seed-shaped events, produced (untimed) into the dev broker,
/// checked to be all still held (the mock keeps ~5 MiB per partition).
/// </summary>
/// <param name="Name">Topic name.</param>
/// <param name="DeadLetterTopic">Its dead-letter topic (the speed layer needs one).</param>
/// <param name="Partitions">Partition count.</param>
/// <param name="Count">Events it holds, offsets 0 to count-1 over its partitions.</param>
internal sealed record BenchTopic(string Name, string DeadLetterTopic, int Partitions, int Count)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    /// <summary>Creates the topic and produces <paramref name="count"/> events into it (fewer if the broker cannot hold them all; logged).</summary>
    public static BenchTopic Create(DevBroker broker, int count, int partitions)
    {
        for (var attempt = 0; ; attempt++)
        {
            var topic = "bench-events-" + Guid.NewGuid().ToString("N")[..8];
            broker.CreateTopic(topic, partitions);
            broker.CreateTopic(topic + ".dlq", partitions);
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

            var held = Held(broker, topic, partitions);
            if (held == count)
            {
                Harness.Log($"topic {topic}: {count:N0} events on {partitions} partitions");
                return new BenchTopic(topic, topic + ".dlq", partitions, count);
            }

            Harness.Log(held < 0
                ? $"the broker already dropped the oldest of {count:N0} events (it keeps about 5 MiB per partition); retrying with fewer"
                : $"the broker holds only {held:N0} of {count:N0} events; retrying with fewer");
            if (attempt == 3)
            {
                throw new InvalidOperationException("the dev broker keeps dropping events");
            }

            count = (int)(count * 0.75);
        }
    }

    /// <summary>Produces one event, waiting while the producer's queue is full.</summary>
    public static void ProduceWithBackpressure(IProducer<string, byte[]> producer, string topic, GeneratedEvent e)
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

    /// <summary>Records the partitions hold from offset 0 (-1 if the broker already dropped the start of one).</summary>
    public static long Held(DevBroker broker, string topic, int partitions)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, "bench-wm-" + Guid.NewGuid())).Build();
        long held = 0;
        for (var p = 0; p < partitions; p++)
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

    /// <summary>
    /// <c>consume.bare</c>: a plain Confluent consumer (the platform's consumer settings, a new group) from subscribe until it
    /// has read every record, and nothing else.
    /// </summary>
    public TimeSpan ConsumeBare(DevBroker broker)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, "bench-bare-" + Guid.NewGuid())).Build();
        var stopwatch = Stopwatch.StartNew();
        consumer.Subscribe(Name);
        long read = 0;
        while (read < Count)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } record && record.Message is not null)
            {
                read++;
            }

            if (stopwatch.Elapsed > Deadline)
            {
                throw new TimeoutException($"bare consumer read only {read:N0} of {Count:N0}");
            }
        }

        var elapsed = stopwatch.Elapsed;
        consumer.Close();
        return elapsed;
    }
}
