using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>
/// How a host of background services (<c>lambda speed</c>, <c>lambda archive</c>) ended: the generic host stops when a
/// background service throws, and returns as from Ctrl-C; this tells the two apart so the process exits non-zero.
/// Take it with <see cref="Watch"/> before running the host (running disposes the host's services).
/// </summary>
public sealed class WorkerExit
{
    private readonly List<BackgroundService> _services;
    private readonly string _name;

    private WorkerExit(List<BackgroundService> services, string name)
    {
        _services = services;
        _name = name;
    }

    /// <summary>Remembers the background services of <paramref name="services"/> (the work of <paramref name="name"/>).</summary>
    public static WorkerExit Watch(IServiceProvider services, string name)
    {
        ArgumentNullException.ThrowIfNull(services);
        return new WorkerExit([.. services.GetServices<IHostedService>().OfType<BackgroundService>()], name);
    }

    /// <summary>Throws <see cref="ServiceFailedException"/> naming the work and the error when a background service ended with an exception.</summary>
    public void ThrowIfFailed()
    {
        foreach (var service in _services)
        {
            if (service.ExecuteTask is { IsFaulted: true } task)
            {
                var error = task.Exception!.GetBaseException();
                throw new ServiceFailedException($"{_name} stopped: {error.Message}", error);
            }
        }
    }
}
