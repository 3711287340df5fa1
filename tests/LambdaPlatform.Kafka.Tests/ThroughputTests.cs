using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Xunit.Abstractions;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Kafka.Tests;

[CollectionDefinition(nameof(ThroughputTests), DisableParallelization = true)]
public sealed class ThroughputRunsAlone;

/// <summary>Measures, does not assert speed: runs alone so other tests do not skew the figure.</summary>
[Collection(nameof(ThroughputTests))]
public sealed class ThroughputTests(ITestOutputHelper output)
{
    [Fact]
    public void ProduceAndConsume_ReportsMessagesPerSecond_WhenEventsAreSeedShaped()
    {
        const int partitions = 4;
        const int count = 100_000; // ~32 MB of JSON; LZ4 keeps each partition well under the mock's 5 MiB.
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName("throughput");
        broker.CreateTopic(topic, partitions);
        var events = Enumerable.Range(0, 1_000).Select(SeedShapedEvent).ToArray();

        using (var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(broker.BootstrapServers)).Build())
        {
            Produce(producer, topic, events, 1_000); // warm-up: JIT, connections, producer id
            Assert.Equal(0, producer.Flush(TestKafka.Deadline));
            var clock = Stopwatch.StartNew();
            Produce(producer, topic, events, count);
            Assert.Equal(0, producer.Flush(TestKafka.Deadline));
            output.WriteLine($"produce: {count / clock.Elapsed.TotalSeconds:N0} msgs/s ({count} msgs of ~{events[0].Length} bytes, {partitions} partitions, idempotent, lz4)");
        }

        var total = count + 1_000;
        using var consumer = new ConsumerBuilder<string, byte[]>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, TestKafka.GroupId())).Build();
        consumer.Subscribe(topic);
        var first = consumer.Consume(TestKafka.Deadline); // includes joining the group
        Assert.NotNull(first);
        var watch = Stopwatch.StartNew();
        var received = 1;
        while (received < total && watch.Elapsed < TestKafka.Deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is not null)
            {
                consumer.StoreOffset(result);
                received++;
            }
        }

        output.WriteLine($"consume: {(received - 1) / watch.Elapsed.TotalSeconds:N0} msgs/s (after the first message; StoreOffset per message)");
        consumer.Commit();
        consumer.Close();
        Assert.Equal(total, received);
    }

    private static void Produce(IProducer<string, byte[]> producer, string topic, byte[][] events, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var message = new Message<string, byte[]> { Key = "user-" + (i % 5_000).ToString(CultureInfo.InvariantCulture), Value = events[i % events.Length] };
            while (true)
            {
                try
                {
                    producer.Produce(topic, message);
                    break;
                }
                catch (ProduceException<string, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(5));
                }
            }
        }
    }

    private static byte[] SeedShapedEvent(int i) => Encoding.UTF8.GetBytes(string.Create(
        CultureInfo.InvariantCulture,
        $$"""{"eventId":"{{Guid.NewGuid()}}","type":"checkout.completed","userId":"user-{{i % 5_000}}","time":"2025-01-01T12:{{i % 60:D2}}:{{i % 59:D2}}.000Z","payload":{"orderId":"o-{{i}}","amount":{{i % 500}}.{{i % 100:D2}},"currency":"EUR","location":"{{(i % 3 == 0 ? "Berlin" : "Paris")}}","items":{{i % 7 + 1}},"device":"mobile","campaign":"spring-sale"} }"""));
}
