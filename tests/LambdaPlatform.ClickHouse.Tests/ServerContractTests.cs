using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace LambdaPlatform.ClickHouse.Tests;

[Collection(ServerGroup.Name)]
public sealed class ServerContractTests(ServerFixture fixture, ITestOutputHelper output)
    : ClickHouseContractTests(fixture.Backend, output)
{
    [Fact]
    public async Task ExecuteAsync_ThrowsTransientErrorNamingHostAndPort_WhenServerIsUnreachable()
    {
        int closedPort;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        await using var unreachable = new ServerClickHouse(new ClickHouseServerOptions { Host = "127.0.0.1", Port = closedPort });

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => unreachable.ExecuteAsync("SELECT 1"));

        Assert.StartsWith($"ClickHouse server http://127.0.0.1:{closedPort} is unreachable", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.True(error.IsTransient);
        Assert.Null(error.ErrorCode);
        Assert.Equal("SELECT 1", error.Query);
    }

    [Fact]
    public async Task PingAsync_Completes_WhenServerIsUp()
    {
        await fixture.Backend.PingAsync();

        Assert.False(fixture.Server.HasExited);
    }
}
