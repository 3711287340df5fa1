using LambdaPlatform.Cli.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LambdaPlatform.Cli.Tests;

public sealed class WorkerExitTests
{
    [Fact]
    public async Task ThrowIfFailed_NamesTheServiceAndError_WhenABackgroundServiceCrashedTheHost()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddHostedService<Crashing>();
        using var host = builder.Build();
        var exit = WorkerExit.Watch(host.Services, "archiver");
        await host.RunAsync().WaitAsync(TimeSpan.FromMinutes(1)); // the host stops by itself when the service throws

        var error = Assert.Throws<ServiceFailedException>(exit.ThrowIfFailed);
        Assert.Equal("archiver stopped: disk on fire", error.Message);
    }

    [Fact]
    public async Task ThrowIfFailed_IsQuiet_WhenTheHostWasStoppedNormally()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddHostedService<Waiting>();
        using var host = builder.Build();
        var exit = WorkerExit.Watch(host.Services, "speed layer");
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await host.RunAsync(stop.Token);

        exit.ThrowIfFailed();
    }

    private sealed class Crashing : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            throw new IOException("disk on fire");
        }
    }

    private sealed class Waiting : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Delay(Timeout.Infinite, stoppingToken);
    }
}
