using System.ComponentModel;
using System.Globalization;
using Hangfire;
using LambdaPlatform.Batch.Recompute;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Jobs;

/// <summary>
/// The scheduled batch recompute of one view (recurring job <c>batch-recompute:&lt;view&gt;</c>): every day the
/// view needs (closed and not yet below W, or dirty), through the shared <see cref="BatchRecompute"/>, holding the
/// view's run lock so it never overlaps a <c>POST /v1/batch/run</c> of the same view.
/// </summary>
/// <remarks>Created by Hangfire's job activator (from the service container) for every run.</remarks>
public sealed class BatchRecomputeJob(BatchRecompute recompute, JobStorage storage, JobsOptions options, ILogger<BatchRecomputeJob> logger)
{
    /// <summary>Recurring job id prefix: <c>batch-recompute:</c>, followed by the view name.</summary>
    public const string RecurringIdPrefix = "batch-recompute:";

    /// <summary>The recurring job id of a view.</summary>
    public static string RecurringId(string view) => RecurringIdPrefix + view;

    /// <summary>Recomputes <paramref name="view"/>; a view that no longer exists is skipped.</summary>
    /// <param name="view">The view name.</param>
    /// <param name="cancellationToken">Hangfire's token: cancelled when the server stops or the job is deleted. The
    /// recompute is safe to interrupt (a partition is swapped in whole or not at all); it is also interrupted, and the job ends
    /// with <see cref="Interrupted"/>, when its run lock is lost.</param>
    /// <returns>A one-line summary shown in the dashboard.</returns>
    [DisplayName("batch recompute {0}")]
    [AutomaticRetry(Attempts = 3, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    public async Task<string> RunAsync(string view, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(view);
        if (!recompute.Views.Contains(view))
        {
            logger.LogWarning("batch recompute of '{View}' skipped: there is no such view any more", view);
            return $"skipped: no view '{view}'";
        }

        await using var held = await RunLocks.AcquireAsync(storage, [RunLocks.View(view)], options.RunLockTimeout, cancellationToken);
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, held.Lost);
        try
        {
            var results = await recompute.RunAsync(view, day: null, progress: null, run.Token);
            return Summary(results);
        }
        catch (OperationCanceledException) when (held.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Without its lock another run may start once PostgreSQL is back: stop here, and let the next tick recompute what is left.
            logger.LogWarning("batch recompute of '{View}' stopped: its run lock was lost with its PostgreSQL session; the next run recomputes what is left", view);
            return Interrupted;
        }
    }

    /// <summary>The summary of a run that stopped because its run lock was lost (PostgreSQL stopped, restarted or unreachable).</summary>
    internal const string Interrupted = "interrupted: the run lock was lost with its PostgreSQL session; the next run recomputes what is left";

    internal static string Summary(IReadOnlyList<BatchDayResult> results)
    {
        if (results.Count == 0)
        {
            return "nothing to recompute";
        }

        var watermark = results.LastOrDefault(r => r.Watermark is not null)?.Watermark;
        var w = watermark is { } moved ? moved.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) : "unchanged";
        return string.Create(CultureInfo.InvariantCulture,
            $"{results.Count} day(s) {results[0].Day:yyyy-MM-dd}..{results[^1].Day:yyyy-MM-dd}: {results.Sum(r => r.RowsIn)} events in, {results.Sum(r => r.RowsOut)} rows out, W {w}");
    }
}
