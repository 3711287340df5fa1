using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Cli.Tests;

public sealed class EventProducerTests
{
    [Fact]
    public async Task Send_WaitsInsteadOfFailing_WhenTheLocalQueueIsFullBecauseTheBrokerIsDown()
    {
        using var broker = DevBroker.Start(new DevBrokerOptions { Topics = [new DevBrokerTopic(Topics.Events, 4)] });
        using var producer = new EventProducer(broker.BootstrapServers);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 7 });
        var now = DateTime.UtcNow;
        producer.Send(generator.Next(now).Json); // connected
        producer.Flush();

        // librdkafka queues at most 100,000 messages locally: with nobody to deliver to, the send after that meets a full queue.
        broker.SetBrokerDown(1);
        const int count = 120_000;
        var events = Enumerable.Range(0, count).Select(_ => generator.Next(now).Json).ToList();
        var sending = Task.Run(() =>
        {
            foreach (var json in events)
            {
                producer.Send(json);
            }
        });
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(sending.IsCompleted); // blocked on the full queue, not thrown
        broker.SetBrokerUp(1);

        await sending.WaitAsync(TimeSpan.FromMinutes(2));
        producer.Flush();
        Assert.Equal(0, producer.Failed);
        Assert.Equal(count + 1, producer.Delivered);
    }
}
