using System.ComponentModel;
using Hangfire;
using LambdaPlatform.Batch.Master;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Jobs;

/// <summary>
/// The scheduled master-dataset compaction (recurring job <c>master-compaction</c>): merges the small files of
/// recent days (<see cref="JobsOptions.CompactionDays"/>), holding a storage lock so only one compactor runs at a
/// time across every jobs host.
/// </summary>
/// <remarks>Created by Hangfire's job activator (from the service container) for every run.</remarks>
public sealed class MasterCompactionJob(MasterDataset dataset, JobStorage storage, JobsOptions options, TimeProvider clock, ILoggerFactory loggers)
{
    /// <summary>The recurring job id: <c>master-compaction</c>.</summary>
    public const string RecurringId = "master-compaction";

    /// <summary>Compacts the recent days; skipped when another compaction is running.</summary>
    /// <param name="cancellationToken">Hangfire's token: cancelled when the server stops or the job is deleted. The
    /// compactor is safe to interrupt (inputs are deleted only after the merged file is in place).</param>
    /// <returns>A one-line summary shown in the dashboard.</returns>
    [DisplayName("master compaction")]
    [AutomaticRetry(Attempts = 1, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    public async Task<string> RunAsync(CancellationToken cancellationToken = default)
    {
        await using var held = await RunLocks.TryAcquireAsync(storage, RunLocks.Compaction, cancellationToken);
        if (held is null)
        {
            return "skipped: another compaction is running";
        }

        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, held.Lost);
        try
        {
            return await CompactAsync(run.Token);
        }
        catch (OperationCanceledException) when (held.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return "interrupted: the compaction lock was lost with its PostgreSQL session; the next run continues";
        }
    }

    private async Task<string> CompactAsync(CancellationToken cancellationToken)
    {
        var days = RecentDays();
        var compactor = new MasterCompactor(dataset, logger: loggers.CreateLogger<MasterCompactor>(), clock: clock);
        int outputs = 0, inputs = 0;
        long rows = 0;
        foreach (var day in days)
        {
            foreach (var result in await compactor.CompactDayAsync(day, cancellationToken))
            {
                outputs += result.Outputs.Count;
                inputs += result.InputsDeleted + result.SupersededDeleted;
                rows += result.Rows;
            }
        }

        return days.Count == 0
            ? "no recent days"
            : $"{days.Count} day(s) {days[0]:yyyy-MM-dd}..{days[^1]:yyyy-MM-dd}: {inputs} files merged into {outputs} ({rows} rows)";
    }

    /// <summary>Today and the <see cref="JobsOptions.CompactionDays"/> − 1 days before it, any later day, and every day changed within that many days.</summary>
    internal IReadOnlyList<DateOnly> RecentDays()
    {
        var now = clock.GetUtcNow();
        var from = DateOnly.FromDateTime(now.UtcDateTime).AddDays(1 - options.CompactionDays);
        var changedSince = now.AddDays(-options.CompactionDays);
        var changed = dataset.ListDayStates().Where(s => s.ChangedAt >= changedSince).Select(s => s.Date).ToHashSet();
        return [.. dataset.ListDays().Where(d => d >= from || changed.Contains(d))];
    }
}
