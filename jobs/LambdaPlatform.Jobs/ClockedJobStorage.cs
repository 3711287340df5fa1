using Hangfire;
using Hangfire.Logging;
using Hangfire.Server;
using Hangfire.States;
using Hangfire.Storage;

namespace LambdaPlatform.Jobs;

/// <summary>
/// Hangfire's storage, unchanged except that it does not offer its own clock
/// (<see cref="JobStorageFeatures.Connection.GetUtcDateTime"/>). Hangfire 1.8's recurring-job scheduler prefers the
/// storage's clock over the <c>nowFactory</c> it is given; without it, the scheduler reads the host's
/// <see cref="TimeProvider"/>, the same clock the jobs' registration and the batch layer use, so schedules can be
/// tested with a fake clock. With the system clock, every jobs host then schedules by its own (NTP-synchronised) clock.
/// </summary>
internal sealed class ClockedJobStorage : JobStorage, IDisposable
{
    private readonly JobStorage _inner;

    public ClockedJobStorage(JobStorage inner, string? postgreSqlConnectionString = null)
    {
        _inner = inner;
        PostgreSqlConnectionString = postgreSqlConnectionString;
        JobExpirationTimeout = inner.JobExpirationTimeout;
    }

    /// <summary>The wrapped storage.</summary>
    public JobStorage Inner => _inner;

    /// <summary>The PostgreSQL database of the storage, or null for in-memory storage: run locks are held there (<see cref="RunLocks"/>).</summary>
    public string? PostgreSqlConnectionString { get; }

    public override bool LinearizableReads => _inner.LinearizableReads;

    public override IMonitoringApi GetMonitoringApi() => _inner.GetMonitoringApi();

    public override IStorageConnection GetConnection() => _inner.GetConnection();

    public override IStorageConnection GetReadOnlyConnection() => _inner.GetReadOnlyConnection();

    // Storages that still use components (Hangfire.PostgreSql 1.21: expiration, counters) need them forwarded.
    [Obsolete("Forwarded for storages that still use server components.")]
#pragma warning disable CS0618
    public override IEnumerable<IServerComponent> GetComponents() => _inner.GetComponents();
#pragma warning restore CS0618

    public override IEnumerable<IBackgroundProcess> GetServerRequiredProcesses() => _inner.GetServerRequiredProcesses();

    public override IEnumerable<IBackgroundProcess> GetStorageWideProcesses() => _inner.GetStorageWideProcesses();

    public override IEnumerable<IStateHandler> GetStateHandlers() => _inner.GetStateHandlers();

    public override void WriteOptionsToLog(ILog logger) => _inner.WriteOptionsToLog(logger);

    public override bool HasFeature(string featureId) =>
        !string.Equals(featureId, JobStorageFeatures.Connection.GetUtcDateTime, StringComparison.Ordinal) && _inner.HasFeature(featureId);

    public override string ToString() => _inner.ToString() ?? nameof(ClockedJobStorage);

    public void Dispose() => (_inner as IDisposable)?.Dispose();
}
