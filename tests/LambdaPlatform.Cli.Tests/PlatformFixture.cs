using System.Net;
using System.Net.Sockets;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Serving;

namespace LambdaPlatform.Cli.Tests;

/// <summary>One `lambda up --demo` (dev broker, chDB, speed layer, HTTP API, demo traffic) for the whole test assembly.</summary>
public sealed class PlatformFixture : IAsyncLifetime
{
    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "lambda-up-" + Guid.NewGuid().ToString("N"));

    public PlatformHost Host { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Host = await PlatformHost.StartAsync(new UpOptions
        {
            DataDirectory = DataDirectory, Http = "127.0.0.1:" + FreePort(), DemoRate = 2_000, Partitions = 2,

            // Short enough for the slow-client tests to finish soon; the defaults are 10 s and 5 s.
            HttpLimits = new HttpLimits { RequestHeadersTimeout = TimeSpan.FromSeconds(4), MinRequestBodyGracePeriod = TimeSpan.FromSeconds(3) },
        });
        Http = new HttpClient { BaseAddress = new Uri(Host.Endpoints.Http) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Host.DisposeAsync();
        Directory.Delete(DataDirectory, recursive: true);
    }

    public async Task<(int Code, string Out, string Err)> LambdaAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await LambdaCli.RunAsync([.. args, "--data", DataDirectory], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class PlatformCollection : ICollectionFixture<PlatformFixture>
{
    public const string Name = "platform";
}
