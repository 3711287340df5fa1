using LambdaPlatform.Chaos.Infrastructure;

namespace LambdaPlatform.Jobs.Tests;

/// <summary>
/// A real PostgreSQL server for a test (<see cref="PostgresServerProcess"/>, shared with the chaos suite, which also stops and
/// restarts it): a fresh cluster in a temporary folder on a free loopback port, with one database created for the test. Stopped
/// and deleted on dispose.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private PostgresServerProcess? _server;

    public int Port => Server.Port;

    public string Database { get; } = "lambda_jobs_" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Connection string of <see cref="Database"/>.</summary>
    public string ConnectionString => Server.ConnectionStringOf(Database);

    private PostgresServerProcess Server => _server ?? throw new InvalidOperationException("the PostgreSQL server is not started");

    public async Task InitializeAsync()
    {
        _server = await PostgresServerProcess.StartAsync();
        await _server.CreateDatabaseAsync(Database);
    }

    /// <summary>Stops the server as a crash would (every session cut); <see cref="StartAgainAsync"/> brings it back with its data.</summary>
    public Task StopAsync() => Server.StopAsync();

    /// <summary>Starts the server again on the same port and data.</summary>
    public Task StartAgainAsync() => Server.StartAgainAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
