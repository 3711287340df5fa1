using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Kafka.Tests;

public sealed class DevBrokerTests
{
    [Fact]
    public void Start_ReturnsLoopbackBootstrapServers_WhenOptionsAreDefault()
    {
        using var broker = DevBroker.Start();

        Assert.Matches(@"^127\.0\.0\.1:\d+$", broker.BootstrapServers);
        Assert.Equal([1], broker.BrokerIds);
        Assert.Contains("librdkafka", DevBroker.NativeLibraryPath, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_ThrowsArgumentExceptionNamingSetting_WhenBrokerCountIsZero()
    {
        var error = Assert.Throws<ArgumentException>(() => DevBroker.Start(new DevBrokerOptions { BrokerCount = 0 }));

        Assert.Equal(nameof(DevBrokerOptions.BrokerCount), error.ParamName);
    }

    [Fact]
    public void Start_ThrowsArgumentExceptionNamingSetting_WhenPortsDoNotMatchBrokerCount()
    {
        var error = Assert.Throws<ArgumentException>(
            () => DevBroker.Start(new DevBrokerOptions { BrokerCount = 2, Ports = [TestKafka.FreePort()] }));

        Assert.Equal(nameof(DevBrokerOptions.Ports), error.ParamName);
    }

    [Fact]
    public void Start_ThrowsDevBrokerException_WhenFixedPortIsTaken()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        var error = Assert.Throws<DevBrokerException>(() => DevBroker.Start(new DevBrokerOptions { Ports = [port] }));

        Assert.Equal(ErrorCode.Local_Transport, error.ErrorCode);
    }

    [Fact]
    public void CreateTopic_ThrowsDevBrokerException_WhenTopicExists()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 2);

        var error = Assert.Throws<DevBrokerException>(() => broker.CreateTopic(topic, 2));

        Assert.Equal(ErrorCode.TopicAlreadyExists, error.ErrorCode);
        Assert.Contains(topic, error.Operation, StringComparison.Ordinal);
        Assert.False(error.IsRetriable);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void CreateTopic_ThrowsArgumentOutOfRange_WhenPartitionsBelowOne(int partitions)
    {
        // The mock itself "creates" a topic with 0 partitions (unusable) and aborts on a negative count.
        using var broker = DevBroker.Start();

        Assert.Throws<ArgumentOutOfRangeException>(() => broker.CreateTopic(TestKafka.TopicName(), partitions));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("..")]
    public void CreateTopic_ThrowsArgumentException_WhenNameIsIllegal(string name)
    {
        using var broker = DevBroker.Start();

        Assert.ThrowsAny<ArgumentException>(() => broker.CreateTopic(name, 1));
    }

    [Fact]
    public void SetBrokerDown_ThrowsDevBrokerException_WhenBrokerIsUnknown()
    {
        using var broker = DevBroker.Start();

        var error = Assert.Throws<DevBrokerException>(() => broker.SetBrokerDown(99));

        Assert.Equal(ErrorCode.BrokerNotAvailable, error.ErrorCode);
    }

    [Fact]
    public void SetPartitionLeader_ThrowsDevBrokerException_WhenPartitionIsOutOfRange()
    {
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        broker.CreateTopic(topic, 1);

        var error = Assert.Throws<DevBrokerException>(() => broker.SetPartitionLeader(topic, 5, 1));

        Assert.Equal(ErrorCode.UnknownTopicOrPart, error.ErrorCode);
    }

    [Fact]
    public void PushBrokerRequestErrors_ThrowsDevBrokerException_WhenBrokerIsUnknown()
    {
        using var broker = DevBroker.Start();

        var error = Assert.Throws<DevBrokerException>(
            () => broker.PushBrokerRequestErrors(7, KafkaApiKey.Produce, TimeSpan.Zero, ErrorCode.NotLeaderForPartition));

        Assert.Equal(ErrorCode.Local_UnknownBroker, error.ErrorCode);
    }

    [Fact]
    public async Task Members_ThrowObjectDisposed_WhenDisposed()
    {
        var broker = DevBroker.Start();
        await broker.DisposeAsync();
        broker.Dispose();

        Assert.Throws<ObjectDisposedException>(() => broker.CreateTopic(TestKafka.TopicName(), 1));
        Assert.Throws<ObjectDisposedException>(() => broker.SetBrokerDown(1));
        Assert.Throws<ObjectDisposedException>(() => broker.PushRequestErrors(KafkaApiKey.Produce, ErrorCode.RequestTimedOut));
    }

    [Fact]
    public async Task Start_RunsIndependentClusters_WhenTwoBrokersShareProcess()
    {
        using var first = DevBroker.Start();
        using var second = DevBroker.Start();
        var topic = TestKafka.TopicName();
        first.CreateTopic(topic, 1);
        second.CreateTopic(topic, 1); // Same name: no TopicAlreadyExists, the clusters share nothing.

        using (var producer = TestKafka.Producer(first))
        {
            for (var i = 0; i < 10; i++)
            {
                await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = $"v{i}" });
            }
        }

        second.SetBrokerDown(DevBroker.AllBrokers); // Faults in one cluster do not reach the other.
        using var reader = TestKafka.Reader(first, topic, 1);
        Assert.Equal(10, TestKafka.ConsumeUpTo(reader, 10).Count);

        second.SetBrokerUp(DevBroker.AllBrokers);
        using var probe = new ConsumerBuilder<Ignore, Ignore>(KafkaDefaults.ConsumerConfig(second.BootstrapServers, TestKafka.GroupId())).Build();
        var marks = probe.QueryWatermarkOffsets(new TopicPartition(topic, 0), TestKafka.Deadline);
        Assert.NotEqual(first.BootstrapServers, second.BootstrapServers);
        Assert.Equal(0, marks.High.Value);
    }

    [Fact]
    public void Start_ServesClientsOnFixedPorts_WhenPortsAreSet()
    {
        int[] ports = [TestKafka.FreePort(), TestKafka.FreePort()];
        var topic = TestKafka.TopicName();
        using var broker = DevBroker.Start(new DevBrokerOptions
        {
            BrokerCount = 2,
            Ports = ports,
            Topics = [new DevBrokerTopic(topic, 4, 2)],
        });

        Assert.Equal($"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}", broker.BootstrapServers);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
        var metadata = admin.GetMetadata(topic, TestKafka.Deadline);
        Assert.Equal(ports.Order(), metadata.Brokers.Select(b => b.Port).Order());
        Assert.Equal(4, metadata.Topics.Single().Partitions.Count);

        using (var producer = TestKafka.Producer(broker))
        {
            for (var i = 0; i < 100; i++)
            {
                producer.Produce(topic, new Message<string, string> { Key = $"user-{i}", Value = $"v{i}" });
            }

            Assert.Equal(0, producer.Flush(TestKafka.Deadline));
        }

        using var reader = TestKafka.Reader(broker, topic, 4);
        Assert.Equal(100, TestKafka.ConsumeUpTo(reader, 100).Count);
    }

    [Fact]
    public async Task RunAsync_ServesUntilCancelledThenFreesPort_WhenStandalone()
    {
        var port = TestKafka.FreePort();
        var options = new DevBrokerOptions
        {
            Ports = [port],
            Topics = [new DevBrokerTopic(Topics.Events, 2), new DevBrokerTopic(Topics.DeadLetter, 1)],
        };
        using var stop = new CancellationTokenSource();
        var started = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        var run = DevBrokerHost.RunAsync(options, b => started.SetResult(b.BootstrapServers), stop.Token);
        var bootstrap = await started.Task.WaitAsync(TestKafka.Deadline);
        using (var producer = new ProducerBuilder<string, string>(KafkaDefaults.ProducerConfig(bootstrap)).Build())
        {
            var result = await producer.ProduceAsync(Topics.Events, new Message<string, string> { Key = "u1", Value = "{}" });
            Assert.Equal(PersistenceStatus.Persisted, result.Status);
        }

        await stop.CancelAsync();
        await run.WaitAsync(TestKafka.Deadline);

        using var rebind = new TcpListener(IPAddress.Loopback, port);
        rebind.Start(); // Throws if the broker still held the port.
    }
}
