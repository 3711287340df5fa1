using LambdaPlatform.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>
/// Runs one worker role (<c>lambda speed</c>, <c>lambda archive</c>) until Ctrl-C: a plain host, or, when it is given an
/// address to listen on, a web host that also serves <c>/health</c> (503 with the reason while the worker is unhealthy)
/// and <c>/metrics</c> (Prometheus). A worker whose background service crashed makes the command fail (exit 1).
/// </summary>
internal static class WorkerHost
{
    /// <summary>Composes the role with <paramref name="compose"/>, prints <paramref name="banner"/> and runs until stopped.</summary>
    /// <exception cref="CliException">The address cannot be listened on, or the worker crashed.</exception>
    public static async Task<int> RunAsync(string role, string banner, string? listen, Action<IServiceCollection> compose, TextWriter stdout, CancellationToken cancellationToken)
    {
        if (listen is null)
        {
            var builder = Host.CreateApplicationBuilder();
            compose(builder.Services);
            using var host = builder.Build();
            var exit = WorkerExit.Watch(host.Services, role);
            await stdout.WriteLineAsync(banner + "; Ctrl-C stops");
            await host.RunAsync(cancellationToken);
            exit.ThrowIfFailed();
            return 0;
        }

        var web = WebApplication.CreateSlimBuilder();
        web.WebHost.UseUrls("http://" + listen);
        compose(web.Services);
        web.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddPrometheusExporter());
        await using var app = web.Build();
        var appExit = WorkerExit.Watch(app.Services, role);
        app.MapHealth();
        app.MapPrometheusScrapingEndpoint("/metrics");
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            throw new CliException($"cannot listen on {listen}: {e.Message} (choose another with --http)");
        }

        await stdout.WriteLineAsync($"{banner}; health on http://{listen}/health; Ctrl-C stops");
        await app.WaitForShutdownAsync(cancellationToken);
        appExit.ThrowIfFailed();
        return 0;
    }
}
