using System.Diagnostics;
using LambdaPlatform.Dev.ClickHouse;

namespace LambdaPlatform.ClickHouse.Tests;

public sealed class ClickHouseServerProcessTests
{
    [Fact]
    public async Task DisposeAsync_KillsServerAndDeletesFolder_WhenFolderWasTemporary()
    {
        var server = await ClickHouseServerProcess.StartAsync();
        var folder = server.DataPath;
        var processId = server.ProcessId;
        await using (var backend = new ServerClickHouse(server.ConnectionOptions))
        {
            Assert.StartsWith("18.", await Tsv.ScalarAsync(backend, "SELECT version()"), StringComparison.Ordinal);
        }

        await server.DisposeAsync();

        Assert.True(server.HasExited);
        Assert.False(Directory.Exists(folder));
        Assert.Throws<ArgumentException>(() => Process.GetProcessById(processId));
    }

    [Fact]
    public async Task StartAsync_ThrowsClickHouseException_WhenBinaryIsMissingAndNotTheDefault()
    {
        var error = await Assert.ThrowsAsync<ClickHouseException>(() =>
            ClickHouseServerProcess.StartAsync(new ClickHouseServerProcessOptions { ServerPath = "/nonexistent/clickhouse-server" }));

        Assert.Contains("/nonexistent/clickhouse-server", error.Message, StringComparison.Ordinal);
    }
}
