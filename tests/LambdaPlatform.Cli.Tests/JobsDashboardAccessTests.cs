namespace LambdaPlatform.Cli.Tests;

/// <summary>
/// The Hangfire dashboard and batch runs of an open `lambda up` (no API keys) from a non-local peer. The request is
/// sent from this machine's non-loopback address to 127.0.0.1: it never leaves the machine, yet the server sees a peer
/// address that is neither a loopback address nor its own, exactly as for a request from another host.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class JobsDashboardAccessTests(PlatformFixture platform)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    private Uri Server => new(platform.Host.Endpoints.Http);

    [Fact]
    public async Task Dashboard_IsRefused_WhenTheRequestIsNotLocal()
    {
        await using var remote = await RawHttp.ConnectAsync(Server, RawHttp.NonLoopbackAddress());
        await remote.SendAsync("GET /hangfire HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");

        Assert.Equal(401, await remote.ReceiveStatusAsync(Generous));
    }

    [Fact]
    public async Task Dashboard_IsShown_WhenTheRequestIsLocal()
    {
        await using var local = await RawHttp.ConnectAsync(Server);
        await local.SendAsync("GET /hangfire HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");

        Assert.Equal(200, await local.ReceiveStatusAsync(Generous));
    }

    [Fact]
    public async Task BatchRun_IsRefused_WhenTheRequestIsNotLocal()
    {
        await using var remote = await RawHttp.ConnectAsync(Server, RawHttp.NonLoopbackAddress());
        await remote.SendAsync("POST /v1/batch/run HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

        var (text, _) = await remote.ReceiveAsync(Generous);

        Assert.StartsWith("HTTP/1.1 401", text, StringComparison.Ordinal);
        Assert.Contains("batch runs are allowed from localhost only", text, StringComparison.Ordinal);
    }
}
