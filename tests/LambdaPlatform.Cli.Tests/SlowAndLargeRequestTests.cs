using System.Net;
using System.Text;

namespace LambdaPlatform.Cli.Tests;

/// <summary>
/// Oversized bodies and slow clients against the real `lambda up` host, over raw sockets. The fixture sets a 4 s
/// header timeout and a 3 s grace period for the minimum body rate (240 B/s); the bounds here are much wider.
/// </summary>
[Collection(PlatformCollection.Name)]
public sealed class SlowAndLargeRequestTests(PlatformFixture platform)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(90);

    private Uri Server => new(platform.Host.Endpoints.Http);

    [Theory]
    [InlineData("/v1/sql", 1024 * 1024)]
    [InlineData("/v1/batch/run", 1024 * 1024)]
    public async Task Post_Answers413WithProblem_WhenDeclaredBodyIsOverTheLimit(string path, int limit)
    {
        await using var client = await RawHttp.ConnectAsync(Server);
        await client.SendAsync($"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {limit + 1}\r\n\r\n{{\"sql\": \"");

        var (text, _) = await client.ReceiveAsync(Generous);

        Assert.StartsWith("HTTP/1.1 413", text, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", text, StringComparison.Ordinal);
        Assert.Contains($"the request body is {limit + 1} bytes; it must be at most {limit} bytes", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sql_Answers413WithProblem_WhenChunkedBodyGrowsOverTheLimit()
    {
        await using var client = await RawHttp.ConnectAsync(Server);
        await client.SendAsync("POST /v1/sql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        var receive = client.ReceiveAsync(Generous);
        // One JSON string that never ends: valid as far as the server reads it, and longer than the limit.
        var chunk = Encoding.ASCII.GetBytes(new string('x', 64 * 1024));
        var framed = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n").Concat(chunk).Concat("\r\n"u8.ToArray()).ToArray();
        try
        {
            await client.SendAsync("15\r\n{\"sql\": \"SELECT 1 -- \r\n");
            for (var sent = 0; sent <= 1024 * 1024 && !receive.IsCompleted; sent += chunk.Length)
            {
                await client.SendAsync(framed);
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // The server answered and closed while the rest was still on its way.
        }

        var (text, _) = await receive;

        Assert.StartsWith("HTTP/1.1 413", text, StringComparison.Ordinal);
        Assert.Contains("the request body must be at most 1048576 bytes", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlowHeaders_AreCutOff_WhileOtherRequestsAreServed()
    {
        // A small slowloris: several connections that each trickle header bytes and never finish the headers.
        var attackers = new List<RawHttp>();
        for (var i = 0; i < 8; i++)
        {
            attackers.Add(await RawHttp.ConnectAsync(Server));
        }

        try
        {
            var outcomes = attackers.Select(TrickleHeadersAsync).ToList();

            // Meanwhile ordinary requests are answered.
            for (var i = 0; i < 5; i++)
            {
                using var response = await platform.Http.GetAsync(new Uri("/v1/views", UriKind.Relative));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            foreach (var (closed, text) in await Task.WhenAll(outcomes))
            {
                Assert.True(closed, "the server did not cut off a client that never finished its headers");
                Assert.False(text.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), text);
            }
        }
        finally
        {
            foreach (var attacker in attackers)
            {
                await attacker.DisposeAsync();
            }
        }

        static async Task<(bool Closed, string Text)> TrickleHeadersAsync(RawHttp client)
        {
            var receive = client.ReceiveAsync(Generous);
            await client.SendAsync("GET /v1/views HTTP/1.1\r\nHost: test\r\n");
            var header = Encoding.ASCII.GetBytes("X-Slow: " + new string('z', 4000));
            for (var i = 0; i < header.Length && !receive.IsCompleted; i++)
            {
                if (!await client.TrySendByteAsync(header[i]))
                {
                    break;
                }

                await Task.WhenAny(receive, Task.Delay(250));
            }

            var (text, closed) = await receive;
            return (closed, text);
        }
    }

    [Fact]
    public async Task SlowBody_IsRejected_WhenItArrivesBelowTheMinimumRate()
    {
        await using var client = await RawHttp.ConnectAsync(Server);
        var receive = client.ReceiveAsync(Generous);
        await client.SendAsync("POST /v1/sql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n");
        var body = Encoding.ASCII.GetBytes("{\"sql\": \"SELECT 1 -- " + new string('y', 100_000));

        // About 4 bytes a second, far below the 240 B/s minimum.
        for (var i = 0; i < body.Length && !receive.IsCompleted; i++)
        {
            if (!await client.TrySendByteAsync(body[i]))
            {
                break;
            }

            await Task.WhenAny(receive, Task.Delay(250));
        }

        var (text, closed) = await receive;

        Assert.True(closed, "the server kept reading a body that arrived below the minimum rate");
        Assert.True(text.Length == 0 || text.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), text);
    }
}
