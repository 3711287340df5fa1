using LambdaPlatform.ClickHouse;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Speed.Tests;

/// <summary>
/// One dev broker and one embedded ClickHouse (chDB allows one data path per process) shared by the
/// speed-layer tests; each test uses its own topics, consumer group and tables (GUID-suffixed).
/// </summary>
public sealed class PipelineFixture : IAsyncLifetime
{
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "speed-tests-" + Guid.NewGuid().ToString("N"));

    public DevBroker Broker { get; private set; } = null!;

    public ChDbClickHouse ClickHouse { get; private set; } = null!;

    public EventSchemaRegistry Schemas { get; } = EventSchemaRegistry.LoadDefault();

    public async Task InitializeAsync()
    {
        Broker = DevBroker.Start(new DevBrokerOptions());
        ClickHouse = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = _dataPath });
    }

    public async Task DisposeAsync()
    {
        await ClickHouse.DisposeAsync();
        Broker.Dispose();
        Directory.Delete(_dataPath, recursive: true);
    }

    /// <summary>Creates a fresh events topic and dead-letter topic for one test.</summary>
    public (string Events, string DeadLetter) NewTopics(int partitions)
    {
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var events = "events-" + suffix;
        var dlq = "events.dlq-" + suffix;
        Broker.CreateTopic(events, partitions);
        Broker.CreateTopic(dlq, partitions);
        return (events, dlq);
    }

    /// <summary>Runs one query and returns its single value as text.</summary>
    public async Task<string> ScalarAsync(string sql)
    {
        await using var stream = await ClickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return (await reader.ReadToEndAsync()).Trim();
    }
}

[CollectionDefinition(Name)]
public sealed class PipelineCollection : ICollectionFixture<PipelineFixture>
{
    public const string Name = "pipeline";
}
