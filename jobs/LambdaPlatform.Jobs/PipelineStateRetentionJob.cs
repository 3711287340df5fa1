using System.ComponentModel;
using Hangfire;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Serving.Store;

namespace LambdaPlatform.Jobs;

/// <summary>
/// The scheduled retention of the pipeline state in the serving ClickHouse (recurring job <c>pipeline-state-retention</c>, daily):
/// drops change markers older than <see cref="ChangeMarkerDays"/> days and batch-run records older than <see cref="BatchRunDays"/>
/// days, by whole partitions. The progress tables keep one row per partition and need none.
/// </summary>
/// <remarks>Created by Hangfire's job activator (from the service container) for every run.</remarks>
public sealed class PipelineStateRetentionJob(IClickHouse clickHouse, TimeProvider clock)
{
    /// <summary>The recurring job id: <c>pipeline-state-retention</c>.</summary>
    public const string RecurringId = "pipeline-state-retention";

    /// <summary>Its cron (UTC): <c>15 3 * * *</c>, every day at 03:15.</summary>
    public const string Cron = "15 3 * * *";

    /// <summary>Days of change markers kept: 2 (API instances read only the last seconds of them).</summary>
    public const int ChangeMarkerDays = 2;

    /// <summary>Days of batch-run records kept: 92.</summary>
    public const int BatchRunDays = 92;

    /// <summary>Drops the old partitions.</summary>
    /// <param name="cancellationToken">Hangfire's token.</param>
    /// <returns>A one-line summary shown in the dashboard.</returns>
    [DisplayName("pipeline-state retention")]
    [AutomaticRetry(Attempts = 1, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    public async Task<string> RunAsync(CancellationToken cancellationToken = default)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var store = new ServingStore(clickHouse);
        await store.EnsurePipelineStateAsync(cancellationToken);
        var dropped = await store.PrunePipelineStateAsync(now.AddDays(-ChangeMarkerDays), now.AddDays(-BatchRunDays), cancellationToken);
        return dropped.Count == 0 ? "nothing to drop" : $"dropped {string.Join(", ", dropped)}";
    }
}
