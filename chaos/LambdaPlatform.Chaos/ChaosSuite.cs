using LambdaPlatform.Chaos.Scenarios;

namespace LambdaPlatform.Chaos;

/// <summary>Every fault of the suite, in the order <c>make chaos</c> runs them.</summary>
public static class ChaosSuite
{
    /// <summary>The scenarios.</summary>
    public static IReadOnlyList<IChaosScenario> All { get; } =
    [
        new KillScenario(),
        new ArchiverLagScenario(),
        new ClickHouseOutageScenario(),
        new ClickHouseOutageEmbeddedScenario(),
        new ClickHouseBatchKillScenario(),
        new ClockSkewScenario(),
        new DiskFullScenario(),
        new FuzzScenario(),
        new KafkaBrokerDownScenario(),
        new KafkaRequestErrorsScenario(),
        new KafkaRebalanceScenario(),
        new PostgresOutageScenario(),
        new SpeedDownUnderLoadScenario(),
    ];
}
