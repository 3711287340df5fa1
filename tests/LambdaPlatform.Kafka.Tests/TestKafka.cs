using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Kafka.Tests;

/// <summary>Helpers shared by the tests: unique names, free ports, consuming with a deadline.</summary>
internal static class TestKafka
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public static string TopicName(string prefix = "test") => $"{prefix}-{Guid.NewGuid():N}";

    public static string GroupId() => $"group-{Guid.NewGuid():N}";

    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Consumes until <paramref name="count"/> messages arrived or the deadline passed.</summary>
    public static List<ConsumeResult<TKey, TValue>> ConsumeUpTo<TKey, TValue>(
        IConsumer<TKey, TValue> consumer, int count, TimeSpan? deadline = null)
    {
        var results = new List<ConsumeResult<TKey, TValue>>(count);
        var clock = Stopwatch.StartNew();
        var limit = deadline ?? Deadline;
        while (results.Count < count && clock.Elapsed < limit)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is not null)
            {
                results.Add(result);
            }
        }

        return results;
    }

    /// <summary>A consumer reading partitions directly (no subscription), from the beginning.</summary>
    public static IConsumer<string, string> Reader(DevBroker broker, string topic, int partitions)
    {
        var consumer = new ConsumerBuilder<string, string>(
            KafkaDefaults.ConsumerConfig(broker.BootstrapServers, GroupId())).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        return consumer;
    }

    public static IProducer<string, string> Producer(DevBroker broker) =>
        new ProducerBuilder<string, string>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build();
}
