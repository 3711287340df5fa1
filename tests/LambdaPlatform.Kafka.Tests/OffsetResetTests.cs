using System.Security.Cryptography;
using Confluent.Kafka;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Kafka.Tests;

/// <summary>Records the broker dropped before a consumer group reached them are reported, with how many, not only logged by librdkafka.</summary>
public sealed class OffsetResetTests
{
    [Theory]
    // Lines of librdkafka's log taken from a soak run's archiver (the dev broker's retention passed the archiver's position).
    [InlineData("[thrd:main]: events [45]: offset reset (at offset 196033 (leader epoch 0), broker 1) to cached BEGINNING offset offset 197254 (leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out of range", "events", 45, 196033, 197254)]
    [InlineData("[thrd:main]: events [22]: offset reset (at offset 230491 (leader epoch -1), broker 1) to cached BEGINNING offset offset 231491 (leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out of range", "events", 22, 230491, 231491)]
    public void TryParseReset_ReadsTopicPartitionAndBothOffsets(string line, string topic, int partition, long from, long to)
    {
        Assert.True(KafkaLogs.TryParseReset(line, out var reset));
        Assert.Equal(new OffsetReset(topic, partition, from, to), reset);
        Assert.Equal(to - from, reset.Skipped);
    }

    [Theory]
    [InlineData("[thrd:main]: events [3]: offset reset (at offset INVALID, broker 1) to BEGINNING: no previously committed offset available: Local: No offset stored")]
    [InlineData("[thrd:main]: Partition events [0] start fetching at offset 12")]
    [InlineData("")]
    public void TryParseReset_IsFalse_ForOtherLines(string line) => Assert.False(KafkaLogs.TryParseReset(line, out _));

    [Fact]
    public async Task Consumer_ReportsTheRecordsItSkipped_WhenTheBrokerDroppedThemPastItsCommittedOffset()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        var group = TestKafka.GroupId();
        broker.CreateTopic(topic, 1);
        var partition = new TopicPartition(topic, 0);

        // The group has read nothing past offset 0 ...
        using (var first = new ConsumerBuilder<string, string>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, group)).Build())
        {
            first.Commit([new TopicPartitionOffset(partition, 0)]);
        }

        // ... when more arrives than the dev broker keeps (about 5 MiB a partition): its oldest records are dropped.
        using (var producer = TestKafka.Producer(broker))
        {
            for (var i = 0; i < 900; i++)
            {
                producer.Produce(topic, new Message<string, string> { Key = "k", Value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(7_500)) });
            }

            producer.Flush(TestKafka.Deadline);
        }

        var resets = new List<OffsetReset>();
        using var consumer = new ConsumerBuilder<string, string>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, group))
            .SetLogHandler(KafkaLogs.Handler<string, string>(NullLogger.Instance, r => { lock (resets) { resets.Add(r); } }))
            .Build();
        var logStart = consumer.QueryWatermarkOffsets(partition, TestKafka.Deadline).Low.Value;
        Assert.True(logStart > 0, "the broker kept every record: the test produced too little");

        consumer.Subscribe(topic);
        var read = consumer.Consume(TestKafka.Deadline);
        Assert.NotNull(read);
        Assert.Equal(logStart, read.Offset.Value);
        await Task.Delay(200); // the log line may come on librdkafka's thread just after the record
        lock (resets)
        {
            var reset = Assert.Single(resets);
            Assert.Equal(new OffsetReset(topic, 0, 0, logStart), reset);
        }
    }
}
