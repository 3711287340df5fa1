using System.Diagnostics;
using Confluent.Kafka;
using Xunit.Abstractions;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Kafka.Tests;

public sealed class DevBrokerFaultTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Produce_StallsThenDelivers_WhenBrokerGoesDownAndComesBack(bool fixedPort)
    {
        using var broker = DevBroker.Start(fixedPort ? new DevBrokerOptions { Ports = [TestKafka.FreePort()] } : null);
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1);
        using var producer = TestKafka.Producer(broker);
        await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "before" });

        broker.SetBrokerDown(1);
        var delivery = producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "during" });
        var first = await Task.WhenAny(delivery, Task.Delay(TimeSpan.FromSeconds(1)));
        Assert.NotSame(delivery, first); // Nobody to deliver to: the producer keeps the message and retries.

        var clock = Stopwatch.StartNew();
        broker.SetBrokerUp(1);
        var result = await delivery.WaitAsync(TestKafka.Deadline);
        output.WriteLine($"delivered {clock.ElapsedMilliseconds} ms after the broker came back (fixed port: {fixedPort})");

        Assert.Equal(PersistenceStatus.Persisted, result.Status);
        Assert.Equal(1, result.Offset.Value);
    }

    [Fact]
    public async Task Produce_DeliversEachMessageOnceInOrder_WhenProduceRequestsFailWithRetriableErrors()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1);
        broker.PushRequestErrors(
            KafkaApiKey.Produce,
            ErrorCode.NotLeaderForPartition,
            ErrorCode.RequestTimedOut,
            ErrorCode.Local_Transport, // the mock closes the connection instead of answering
            ErrorCode.NotEnoughReplicas,
            ErrorCode.NotEnoughReplicasAfterAppend,
            ErrorCode.LeaderNotAvailable);
        const int count = 2_000;

        var failures = 0;
        using (var producer = TestKafka.Producer(broker))
        {
            for (var i = 0; i < count; i++)
            {
                producer.Produce(
                    topic,
                    new Message<string, string> { Key = "k", Value = i.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                    report => { if (report.Error.IsError) { Interlocked.Increment(ref failures); } });
            }

            Assert.Equal(0, producer.Flush(TestKafka.Deadline));
        }

        using var reader = TestKafka.Reader(broker, topic, 1);
        var values = TestKafka.ConsumeUpTo(reader, count + 1, TimeSpan.FromSeconds(3)).Select(r => int.Parse(r.Message.Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, failures);
        Assert.Equal(Enumerable.Range(0, count), values);
    }

    [Fact]
    public async Task Produce_FailsWithInjectedError_WhenErrorIsNotRetriable()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1);
        using var producer = TestKafka.Producer(broker);
        await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "warm-up" });

        broker.PushRequestErrors(KafkaApiKey.Produce, ErrorCode.TopicAuthorizationFailed);
        var error = await Assert.ThrowsAsync<ProduceException<string, string>>(
            () => producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "denied" }));

        Assert.Equal(ErrorCode.TopicAuthorizationFailed, error.Error.Code);
    }

    [Fact]
    public async Task ClearRequestErrors_DropsPendingErrors_WhenCalledBeforeRequests()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1);
        broker.PushRequestErrors(KafkaApiKey.Produce, ErrorCode.TopicAuthorizationFailed, ErrorCode.TopicAuthorizationFailed);

        broker.ClearRequestErrors(KafkaApiKey.Produce);
        using var producer = TestKafka.Producer(broker);
        var result = await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "v" }).WaitAsync(TestKafka.Deadline);

        Assert.Equal(PersistenceStatus.Persisted, result.Status);
    }

    [Fact]
    public async Task PushBrokerRequestErrors_DelaysResponse_WhenDelayIsGiven()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1);
        using var producer = TestKafka.Producer(broker);
        await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "warm-up" });

        broker.PushBrokerRequestErrors(1, KafkaApiKey.Produce, TimeSpan.FromMilliseconds(600), ErrorCode.NoError);
        var clock = Stopwatch.StartNew();
        var result = await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "slow" }).WaitAsync(TestKafka.Deadline);

        Assert.Equal(PersistenceStatus.Persisted, result.Status);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(500), TestKafka.Deadline);
    }

    [Fact]
    public async Task Produce_FollowsNewLeader_WhenPartitionLeaderMoves()
    {
        using var broker = DevBroker.Start(new DevBrokerOptions { BrokerCount = 2 });
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1, replicationFactor: 2);
        broker.SetPartitionLeader(topic, 0, 1);
        using var producer = TestKafka.Producer(broker);
        await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "on-1" });

        broker.SetPartitionLeader(topic, 0, 2);
        broker.SetBrokerDown(1); // Only the new leader can take the next message.
        var result = await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "on-2" }).WaitAsync(TestKafka.Deadline);

        Assert.Equal(1, result.Offset.Value);
    }
}
