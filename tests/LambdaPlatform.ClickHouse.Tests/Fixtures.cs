using LambdaPlatform.Dev.ClickHouse;
namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>One chDB engine for the whole test run, on a temporary data folder.</summary>
public sealed class ChDbFixture : IAsyncLifetime
{
    public string DataPath { get; } = Path.Combine(Path.GetTempPath(), "lambda-chdb-tests-" + Guid.NewGuid().ToString("N"));

    public ChDbClickHouse Backend { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Backend = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = DataPath });

    public async Task DisposeAsync()
    {
        await Backend.DisposeAsync();
        Directory.Delete(DataPath, recursive: true);
    }
}

/// <summary>One clickhouse-server process (Debian's 18.16 here) for the whole test run.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public ClickHouseServerProcess Server { get; private set; } = null!;

    public ServerClickHouse Backend { get; private set; } = null!;

    /// <summary>The writer's password, as a caller would pass it from configuration (made up per run).</summary>
    public string WriterPassword { get; } = "writer-" + Guid.NewGuid().ToString("N");

    public async Task InitializeAsync()
    {
        Server = await ClickHouseServerProcess.StartAsync(new ClickHouseServerProcessOptions { WriterPassword = WriterPassword });
        Backend = new ServerClickHouse(Server.ConnectionOptions);
    }

    public async Task DisposeAsync()
    {
        await Backend.DisposeAsync();
        await Server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ChDbGroup : ICollectionFixture<ChDbFixture>
{
    public const string Name = "chdb";
}

[CollectionDefinition(Name)]
public sealed class ServerGroup : ICollectionFixture<ServerFixture>
{
    public const string Name = "clickhouse-server";
}
