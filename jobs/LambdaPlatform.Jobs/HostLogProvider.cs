using Hangfire.AspNetCore;
using Hangfire.Logging;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Jobs;

/// <summary>
/// Hangfire's log provider is process-wide (static), but a host's <see cref="ILoggerFactory"/> is disposed with the
/// host. This provider sends Hangfire's logs to the host's factory and, once that factory is gone (the host stopped,
/// another one may start in the same process), hands out loggers that drop messages instead of throwing.
/// </summary>
internal sealed class HostLogProvider(ILoggerFactory factory) : ILogProvider
{
    private readonly AspNetCoreLogProvider _inner = new(factory);

    public ILog GetLogger(string name)
    {
        try
        {
            return _inner.GetLogger(name);
        }
        catch (ObjectDisposedException)
        {
            return Dropped.Instance;
        }
    }

    private sealed class Dropped : ILog
    {
        public static readonly Dropped Instance = new();

        public bool Log(Hangfire.Logging.LogLevel logLevel, Func<string>? messageFunc, Exception? exception = null) => false;
    }
}
