using System.Net;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// An OTLP/HTTP receiver for tests: accepts <c>POST /v1/traces</c>, <c>/v1/logs</c> and <c>/v1/metrics</c> (protobuf bodies, kept as
/// they came) on a free loopback port and answers 200 with an empty export response, as a collector does.
/// </summary>
public sealed class OtlpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<(string Path, byte[] Body)> _bodies = [];
    private readonly Lock _lock = new();

    public OtlpReceiver()
    {
        Url = $"http://127.0.0.1:{TestPlatform.FreePort()}/";
        _listener.Prefixes.Add(Url);
    }

    /// <summary>The base URL (an OTLP http/protobuf endpoint).</summary>
    public string Url { get; }

    public void Start()
    {
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    /// <summary>Whether a body posted to <paramref name="path"/> contains <paramref name="bytes"/>.</summary>
    public bool Contains(string path, ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            foreach (var (p, body) in _bodies)
            {
                if (p == path && body.AsSpan().IndexOf(bytes) >= 0)
                {
                    return true;
                }
            }

            return false;
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var buffer = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(buffer);
            lock (_lock)
            {
                _bodies.Add((context.Request.Url!.AbsolutePath, buffer.ToArray()));
            }

            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.ContentLength64 = 0;
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
    }
}
