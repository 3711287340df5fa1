using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.Storage;
using Npgsql;

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
/// Held run locks (every resource asked for). Dispose to release them.
/// </summary>
internal sealed class RunLock : IAsyncDisposable
{
    private readonly IStorageConnection? _storageConnection;
    private readonly List<IDisposable> _storageLocks;
    private readonly NpgsqlConnection? _session;
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watch = Task.CompletedTask;
    private int _disposed;

    private RunLock(IStorageConnection? storageConnection, List<IDisposable> storageLocks, NpgsqlConnection? session, TimeSpan keepAlive)
    {
        _storageConnection = storageConnection;
        _storageLocks = storageLocks;
        _session = session;
        if (session is not null)
        {
            _watch = WatchAsync(session, keepAlive);
        }
    }

    /// <summary>
    /// Cancelled when the locks can no longer be guaranteed: the PostgreSQL session that holds them ended (PostgreSQL stopped,
    /// restarted or unreachable). Another run may then take them once PostgreSQL is back, so a run must stop at its next step.
    /// Never cancelled for locks in Hangfire's in-memory storage.
    /// </summary>
    public CancellationToken Lost => _lost.Token;

    internal static RunLock InStorage(IStorageConnection connection, List<IDisposable> locks) => new(connection, locks, null, TimeSpan.Zero);

    internal static RunLock InSession(NpgsqlConnection session, TimeSpan keepAlive) => new(null, [], session, keepAlive);

    /// <summary>Releases the locks (closing the session that holds PostgreSQL locks ends them, whether or not PostgreSQL is reachable).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        await _watch;
        if (_session is not null)
        {
            await _session.DisposeAsync();
        }

        ReleaseStorageLocks();
        _stop.Dispose();
        _lost.Dispose();
    }

    private void ReleaseStorageLocks()
    {
        for (var i = _storageLocks.Count - 1; i >= 0; i--)
        {
            _storageLocks[i].Dispose();
        }

        _storageConnection?.Dispose();
    }

    /// <summary>Checks the session every <paramref name="keepAlive"/>; when it fails, the locks are gone with it.</summary>
    private async Task WatchAsync(NpgsqlConnection session, TimeSpan keepAlive)
    {
        await Task.Yield();
        using var timer = new PeriodicTimer(keepAlive);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                await using var command = new NpgsqlCommand("SELECT 1", session);
                await command.ExecuteScalarAsync(_stop.Token);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Released.
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException)
        {
            await _lost.CancelAsync();
        }
    }
}

/// <summary>
/// Locks that keep runs of one view from overlapping, whether scheduled or requested over HTTP, in this process or in another
/// one sharing the storage. Waiting is asynchronous: every attempt is a short try, with a pause between attempts.
/// </summary>
/// <remarks>
/// With PostgreSQL storage the locks are PostgreSQL session-level advisory locks, held by a connection of their own for as long as
/// the run lasts: when that session ends — the process died, or PostgreSQL stopped or restarted — PostgreSQL releases them, and the
/// holder learns of it (<see cref="RunLock.Lost"/>). Hangfire.PostgreSql's own distributed locks are rows, deleted by the session
/// that holds them; a row whose session died with a PostgreSQL restart stays until it is
/// <c>PostgreSqlStorageOptions.DistributedLockTimeout</c> old, and the view's runs waited that long (found by the chaos suite's
/// PostgreSQL outage). With Hangfire's in-memory storage the locks are its own.
/// </remarks>
internal static class RunLocks
{
    private static readonly TimeSpan Attempt = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(200);

    /// <summary>How often the session holding PostgreSQL locks is checked: 2 s.</summary>
    internal static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(2);

    /// <summary>The lock resource of a view's batch runs.</summary>
    public static string View(string view) => "lambda:batch:" + view;

    /// <summary>The lock resource of the master-dataset compaction.</summary>
    public const string Compaction = "lambda:master-compaction";

    /// <summary>
    /// Takes every lock of <paramref name="resources"/> (in ordinal order, all or none), waiting up to
    /// <paramref name="timeout"/>; PostgreSQL being unreachable counts as busy. Dispose the result to release them.
    /// </summary>
    /// <exception cref="RunLockTimeoutException">A lock stayed busy for <paramref name="timeout"/>.</exception>
    public static async Task<RunLock> AcquireAsync(JobStorage storage, IEnumerable<string> resources, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var ordered = resources.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return storage is ClockedJobStorage { PostgreSqlConnectionString: { } connectionString }
            ? await AcquireInSessionAsync(connectionString, ordered, timeout, cancellationToken)
            : await AcquireInStorageAsync(storage, ordered, timeout, cancellationToken);
    }

    /// <summary>Tries once to take a lock; null when it is busy.</summary>
    public static async Task<RunLock?> TryAcquireAsync(JobStorage storage, string resource, CancellationToken cancellationToken = default)
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

    /// <summary>The advisory-lock key of a resource: FNV-1a (64 bits) of its UTF-8 bytes.</summary>
    internal static long Key(string resource)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(resource))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return unchecked((long)hash);
    }

    private static async Task<RunLock> AcquireInSessionAsync(string connectionString, List<string> ordered, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Not pooled: closing the connection ends the session, and with it every lock it holds.
        var sessionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, ApplicationName = "lambda run lock" }.ConnectionString;
        var started = TimeProvider.System.GetTimestamp();
        NpgsqlConnection? session = null;
        string busy;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (session is null)
                {
                    session = new NpgsqlConnection(sessionString);
                    await session.OpenAsync(cancellationToken);
                }

                if (await TryLockAllAsync(session, ordered, cancellationToken) is not { } taken)
                {
                    return RunLock.InSession(session, KeepAlive);
                }

                busy = taken;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
            {
                busy = $"{ordered[0]} (PostgreSQL unreachable: {e.Message})";
                if (session is not null)
                {
                    await session.DisposeAsync();
                    session = null;
                }
            }

            if (TimeProvider.System.GetElapsedTime(started) >= timeout)
            {
                if (session is not null)
                {
                    await session.DisposeAsync();
                }

                throw new RunLockTimeoutException($"'{busy}' is held by another run (waited {timeout})") { Resource = busy };
            }

            await Task.Delay(Pause, cancellationToken);
        }
    }

    /// <summary>Takes every lock or none; returns the busy resource, or null when all are held.</summary>
    private static async Task<string?> TryLockAllAsync(NpgsqlConnection session, List<string> ordered, CancellationToken cancellationToken)
    {
        var taken = new List<long>(ordered.Count);
        foreach (var resource in ordered)
        {
            var key = Key(resource);
            await using (var take = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", session))
            {
                take.Parameters.AddWithValue("key", key);
                if (await take.ExecuteScalarAsync(cancellationToken) is true)
                {
                    taken.Add(key);
                    continue;
                }
            }

            foreach (var held in taken)
            {
                await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", session);
                release.Parameters.AddWithValue("key", held);
                await release.ExecuteScalarAsync(cancellationToken);
            }

            return resource;
        }

        return null;
    }

    private static async Task<RunLock> AcquireInStorageAsync(JobStorage storage, List<string> ordered, TimeSpan timeout, CancellationToken cancellationToken)
    {
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

            var set = RunLock.InStorage(connection, held);
            if (busy is null)
            {
                return set;
            }

            await set.DisposeAsync();
            if (TimeProvider.System.GetElapsedTime(started) >= timeout)
            {
                throw new RunLockTimeoutException($"'{busy}' is held by another run (waited {timeout})") { Resource = busy };
            }

            await Task.Delay(Pause, cancellationToken);
        }
    }
}
