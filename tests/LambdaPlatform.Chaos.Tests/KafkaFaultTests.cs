using Confluent.Kafka;
using LambdaPlatform.Chaos.Scenarios;
using LambdaPlatform.Kafka;
using Xunit.Abstractions;

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
        Assert.True(result.Injected >= 30, $"only {result.Injected} errors injected");
    }

    [Fact]
    public async Task Rebalance_CountsEachEventOnce_WhenSpeedInstancesJoinLeaveAndDie()
    {
        var result = await ChaosAssert.RunCleanAsync(new KafkaRebalanceScenario(), output);

        Assert.Equal(result.EventsIn, ChaosSettings.Ci().FaultEvents);
        Assert.Equal(4, result.Injected); // two joins, a graceful leave, a SIGKILL
    }

    [Fact]
    public void ProducerConfig_IsIdempotentWithAcksAll()
    {
        var config = KafkaDefaults.ProducerConfig("127.0.0.1:9092");

        Assert.True(config.EnableIdempotence);
        Assert.Equal(Acks.All, config.Acks);
    }
}
