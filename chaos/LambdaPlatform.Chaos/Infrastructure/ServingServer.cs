using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Dev.ClickHouse;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>
/// The serving layer in server mode for a scenario: a real <c>clickhouse-server</c> process with its own folder
/// and fixed ports (so it can be stopped and started again at the same address), the serving objects of every
/// shipped view created, and a client for checks.
/// </summary>
public sealed class ServingServer : IAsyncDisposable
{
    private readonly string _folder;
    private ClickHouseServerProcess? _process;

    private ServingServer(string folder, ClickHouseServerProcess process)
    {
        _folder = folder;
        _process = process;
        HttpPort = process.HttpPort;
        TcpPort = process.TcpPort;
        Client = new ServerClickHouse(process.ConnectionOptions);
    }

    /// <summary>HTTP port (kept across restarts).</summary>
    public int HttpPort { get; }

    /// <summary>Native port (kept across restarts).</summary>
    public int TcpPort { get; }

    /// <summary>A client as the platform's writer (user <c>default</c> of the generated config).</summary>
    public ServerClickHouse Client { get; }

    /// <summary>The connection string the platform's processes get.</summary>
    public string ConnectionString => Client.Options.ToConnectionString();

    /// <summary>Whether the server process is running.</summary>
    public bool Running => _process is { HasExited: false };

    /// <summary>Starts a server in <paramref name="folder"/> and creates the serving tables and views of the shipped views.</summary>
    public static async Task<ServingServer> StartAsync(string folder, CancellationToken cancellationToken = default)
    {
        var process = await ClickHouseServerProcess.StartAsync(new ClickHouseServerProcessOptions { DataPath = folder }, cancellationToken);
        var server = new ServingServer(folder, process);
        var schemas = EventSchemaRegistry.LoadDefault();
        foreach (var view in ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), schemas))
        {
            foreach (var statement in new ViewSql(view).CreateServingObjects)
            {
                await server.Client.ExecuteAsync(statement, cancellationToken);
            }
        }

        return server;
    }

    /// <summary>Kills the server process (the data folder stays): ClickHouse is unavailable until <see cref="StartAgainAsync"/>.</summary>
    public async Task StopAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            await process.DisposeAsync();
        }
    }

    /// <summary>Starts the server again on the same folder and ports.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (_process is not null)
        {
            return;
        }

        _process = await ClickHouseServerProcess.StartAsync(new ClickHouseServerProcessOptions { DataPath = _folder, HttpPort = HttpPort, TcpPort = TcpPort }, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await StopAsync();
    }
}
