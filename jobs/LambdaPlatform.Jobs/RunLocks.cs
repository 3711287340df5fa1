using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.Storage;

namespace LambdaPlatform.Jobs;

/// <summary>A batch run could not get its lock in time: another run of the same view (or compaction) holds it.</summary>
public sealed class RunLockTimeoutException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RunLockTimeoutException()
        : this("a batch run lock was not free in time")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public RunLockTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public RunLockTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The lock resource that was busy, when known.</summary>
    public string? Resource { get; init; }
}

/// <summary>
/// Locks in Hangfire's storage, so runs of one view never overlap, whether scheduled or requested over HTTP, in
/// this process or in another one sharing the storage (PostgreSQL). Waiting is asynchronous: every attempt is a
/// short try, with a pause between attempts.
/// </summary>
internal static class RunLocks
{
    private static readonly TimeSpan Attempt = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(200);

    /// <summary>The lock resource of a view's batch runs.</summary>
    public static string View(string view) => "lambda:batch:" + view;

    /// <summary>The lock resource of the master-dataset compaction.</summary>
    public const string Compaction = "lambda:master-compaction";

    /// <summary>
    /// Takes every lock of <paramref name="resources"/> (in ordinal order, all or none), waiting up to
    /// <paramref name="timeout"/>. Dispose the result to release them.
    /// </summary>
    /// <exception cref="RunLockTimeoutException">A lock stayed busy for <paramref name="timeout"/>.</exception>
    public static async Task<IDisposable> AcquireAsync(JobStorage storage, IEnumerable<string> resources, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var ordered = resources.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var started = TimeProvider.System.GetTimestamp();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var connection = storage.GetConnection();
            var held = new List<IDisposable>(ordered.Count);
            string? busy = null;
            foreach (var resource in ordered)
            {
                try
                {
                    held.Add(connection.AcquireDistributedLock(resource, Attempt));
                }
                catch (Exception e) when (e is DistributedLockTimeoutException or PostgreSqlDistributedLockException)
                {
                    busy = resource;
                    break;
                }
            }

            var set = new LockSet(connection, held);
            if (busy is null)
            {
                return set;
            }

            set.Dispose();
            if (TimeProvider.System.GetElapsedTime(started) >= timeout)
            {
                throw new RunLockTimeoutException($"'{busy}' is held by another run (waited {timeout})") { Resource = busy };
            }

            await Task.Delay(Pause, cancellationToken);
        }
    }

    /// <summary>Tries once to take a lock; null when it is busy.</summary>
    public static async Task<IDisposable?> TryAcquireAsync(JobStorage storage, string resource, CancellationToken cancellationToken = default)
    {
        try
        {
            return await AcquireAsync(storage, [resource], TimeSpan.Zero, cancellationToken);
        }
        catch (RunLockTimeoutException)
        {
            return null;
        }
    }

    private sealed class LockSet(IStorageConnection connection, List<IDisposable> locks) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            for (var i = locks.Count - 1; i >= 0; i--)
            {
                locks[i].Dispose();
            }

            connection.Dispose();
        }
    }
}
