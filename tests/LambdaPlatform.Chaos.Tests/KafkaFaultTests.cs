using System.Diagnostics;
using Confluent.Kafka;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Scenarios;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using Xunit.Abstractions;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>Kafka faults at CI size (50,000 events each): nothing lost, nothing double counted, in the merged views and the master dataset.</summary>
public sealed class KafkaFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task BrokerDown_LosesAndDuplicatesNothing_WhenBrokerIsDownWhileEventsFlow()
    {
        var result = await ChaosAssert.RunCleanAsync(new KafkaBrokerDownScenario(), output);

        Assert.Equal(result.EventsIn, ChaosSettings.Ci().FaultEvents); // every event acknowledged despite the outage
    }

    [Fact]
    public async Task RequestErrors_LoseAndDuplicateNothing_WhenProduceFetchAndCommitFailRepeatedly()
    {
        var result = await ChaosAssert.RunCleanAsync(new KafkaRequestErrorsScenario(), output);

        Assert.Equal(result.EventsIn, ChaosSettings.Ci().FaultEvents);
        Assert.True(result.Injected >= 30, $"only {result.Injected} requests failed"); // measured with the broker's request tracking
    }

    [Fact]
    public async Task Rebalance_CountsEachEventOnce_WhenSpeedInstancesJoinLeaveAndDie()
    {
        var scenario = new KafkaRebalanceScenario();
        var result = await ChaosAssert.RunCleanAsync(scenario, output);

        Assert.Equal(result.EventsIn, ChaosSettings.Ci().FaultEvents);
        Assert.Equal(6, result.Injected); // seen on the members' metrics: speed two joins, a graceful leave, a SIGKILL; archive a join, a graceful leave
        Assert.All(scenario.PartitionsReceived, joined => Assert.True(joined.Value > 0, $"{joined.Key} received no partition"));
    }

    [Fact]
    public void ProducerConfig_IsIdempotentWithAcksAll()
    {
        var config = KafkaDefaults.ProducerConfig("127.0.0.1:9092");

        Assert.True(config.EnableIdempotence);
        Assert.Equal(Acks.All, config.Acks);
    }

    [Fact]
    public async Task DeadLetterProducer_IsIdempotent_WhenSpeedLayerPublishesARejectedRecord()
    {
        // On the wire: an idempotent producer asks the broker for a producer id (InitProducerId) before it sends,
        // a plain one never does; and librdkafka refuses enable.idempotence without acks=all, so this also proves
        // acks=all. Nothing but the speed layer's dead-letter producer can send one here.
        var settings = ChaosSettings.Ci();
        try
        {
            await using var broker = ChaosBroker.Start(partitions: 1);
            broker.StartRequestTracking();
            await using var serving = await ServingServer.StartAsync(settings.Folder("clickhouse"));
            using (var plain = new ChaosProducer(broker.BootstrapServers, new ExpectedViews(), configure: c =>
            {
                c.EnableIdempotence = false;
                c.Acks = Acks.Leader;
            }))
            {
                plain.SendRaw("not an event"u8.ToArray());
                plain.Flush(TimeSpan.FromSeconds(30));
                Assert.Equal(1, plain.RawDelivered);
            }

            Assert.DoesNotContain(broker.TrackedRequests(), r => r.ApiKey == KafkaApiKey.InitProducerId); // the check can tell

            await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString],
                Path.Combine(settings.Folder("logs"), "speed.log"));
            var dead = await ReadOneAsync(broker.BootstrapServers, Topics.DeadLetter);
            output.WriteLine($"dead letter: {System.Text.Encoding.UTF8.GetString(dead.Message.Value)} reason {System.Text.Encoding.UTF8.GetString(dead.Message.Headers.GetLastBytes("reason"))}");

            Assert.Equal("not an event"u8.ToArray(), dead.Message.Value);
            var initProducerIds = broker.TrackedRequests().Count(r => r.ApiKey == KafkaApiKey.InitProducerId);
            Assert.True(initProducerIds >= 1, $"the dead-letter producer sent no InitProducerId: not idempotent\n{speed.Tail()}");
        }
        finally
        {
            Directory.Delete(settings.WorkDirectory, recursive: true);
        }
    }

    private static async Task<ConsumeResult<byte[], byte[]>> ReadOneAsync(string bootstrapServers, string topic)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(bootstrapServers, "reader-" + Guid.NewGuid().ToString("N"))).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < KafkaRig.Eventually)
        {
            var record = await Task.Run(() => consumer.Consume(TimeSpan.FromMilliseconds(500)));
            if (record is not null)
            {
                consumer.Close();
                return record;
            }
        }

        throw new TimeoutException($"nothing arrived on {topic} within {KafkaRig.Eventually}");
    }
}
