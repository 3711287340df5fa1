using System.Diagnostics;
using Npgsql;

namespace LambdaPlatform.Jobs.Tests;

/// <summary>
/// Run locks across a PostgreSQL restart (found by the chaos suite's PostgreSQL outage): a lock held when PostgreSQL stopped must
/// not outlive its session. Hangfire.PostgreSql's lock rows did: the row's release failed on the dead connection, and every later
/// run of the view waited for the row to be <c>DistributedLockTimeout</c> (10 minutes) old.
/// </summary>
public sealed class RunLockOutageTests : IAsyncLifetime
{
    private readonly PostgresServer _postgres = new();

    public Task InitializeAsync() => _postgres.InitializeAsync();

    public Task DisposeAsync() => _postgres.DisposeAsync();

    [Fact]
    public async Task RunLock_IsLostByItsHolderAndFreeAtOnce_WhenPostgreSqlRestartsWhileItIsHeld()
    {
        var storage = JobsServiceCollectionExtensions.CreateStorage(new JobsOptions { Storage = JobsStorage.PostgreSql, PostgreSqlConnectionString = _postgres.ConnectionString });
        var resource = RunLocks.View("checkout_revenue");
        await using var held = await RunLocks.AcquireAsync(storage, [resource], TimeSpan.Zero);
        await Assert.ThrowsAsync<RunLockTimeoutException>(() => RunLocks.AcquireAsync(storage, [resource], TimeSpan.FromMilliseconds(300)));
        Assert.False(held.Lost.IsCancellationRequested);

        await _postgres.StopAsync();
        await JobsFixture.EventuallyAsync(() => Task.FromResult(held.Lost.IsCancellationRequested), "the holder learns that its lock went with its session", TimeSpan.FromSeconds(15));
        await _postgres.StartAgainAsync();

        var waited = Stopwatch.StartNew();
        await using var again = await RunLocks.AcquireAsync(storage, [resource], TimeSpan.FromSeconds(20));
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), $"the lock was free only after {waited.Elapsed}");
        Assert.False(again.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task AcquireAsync_RidesOutAnUnreachablePostgreSql_AsABusyLock()
    {
        var storage = JobsServiceCollectionExtensions.CreateStorage(new JobsOptions { Storage = JobsStorage.PostgreSql, PostgreSqlConnectionString = _postgres.ConnectionString });
        await _postgres.StopAsync();

        var error = await Assert.ThrowsAsync<RunLockTimeoutException>(() => RunLocks.AcquireAsync(storage, [RunLocks.View("v")], TimeSpan.FromMilliseconds(500)));
        Assert.Contains("PostgreSQL unreachable", error.Message, StringComparison.Ordinal);

        var acquire = RunLocks.AcquireAsync(storage, [RunLocks.View("v")], TimeSpan.FromSeconds(30));
        await Task.Delay(500);
        await _postgres.StartAgainAsync();
        await using var held = await acquire;
        Assert.False(held.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task HangfireLockLeftByADeadSession_BlocksItsResourceForAMinuteOnly()
    {
        // A lock row as a PostgreSQL restart leaves it: its holder's session died before the row's release (the recurring-job
        // scheduler's lock, taken when PostgreSQL stopped, blocked every schedule for the library's default 10 minutes).
        var storage = JobsServiceCollectionExtensions.CreateStorage(new JobsOptions { Storage = JobsStorage.PostgreSql, PostgreSqlConnectionString = _postgres.ConnectionString });
        await InsertLockRowAsync("hangfire:recent", TimeSpan.FromSeconds(20));
        await InsertLockRowAsync("hangfire:stale", JobsServiceCollectionExtensions.HangfireLockTimeout + TimeSpan.FromSeconds(5));
        using var connection = storage.GetConnection();

        Assert.ThrowsAny<Exception>(() => connection.AcquireDistributedLock("recent", TimeSpan.FromMilliseconds(300)).Dispose());
        using (connection.AcquireDistributedLock("stale", TimeSpan.FromSeconds(2)))
        {
            // Taken: the row older than HangfireLockTimeout was removed.
        }
    }

    private async Task InsertLockRowAsync(string resource, TimeSpan age)
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString);
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand("INSERT INTO hangfire.lock (resource, updatecount, acquired) VALUES (@resource, 0, @acquired)", connection);
        insert.Parameters.AddWithValue("resource", resource);
        insert.Parameters.AddWithValue("acquired", DateTime.UtcNow - age);
        await insert.ExecuteNonQueryAsync();
    }
}
