using Hangfire;
using Hangfire.Common;
using Hangfire.Storage;
using LambdaPlatform.Schemas.Views;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Jobs;

/// <summary>
/// Registers the recurring jobs at start-up, idempotently: <c>batch-recompute:&lt;view&gt;</c> for every view on its cron
/// (the override in <see cref="JobsOptions.ViewSchedules"/>, else the view's <c>batch.schedule</c>),
/// <c>master-compaction</c> and <c>pipeline-state-retention</c>; removes <c>batch-recompute:*</c> jobs of views that no longer exist. Registering again
/// with unchanged crons keeps each job's next execution.
/// </summary>
internal sealed class RecurringJobsRegistrar(
    IRecurringJobManager manager, JobStorage storage, IReadOnlyList<ViewDefinition> views, JobsOptions options, ILogger<RecurringJobsRegistrar> logger)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var registered = Register(manager, storage, views, options);
        logger.LogInformation("recurring jobs registered: {Jobs}", string.Join(", ", registered));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Registers every recurring job and removes stale ones; returns "id (cron)" of each registered job.</summary>
    /// <exception cref="ArgumentException">A cron is invalid, or <see cref="JobsOptions.ViewSchedules"/> names no view; the message says which.</exception>
    internal static IReadOnlyList<string> Register(IRecurringJobManager manager, JobStorage storage, IReadOnlyList<ViewDefinition> views, JobsOptions options)
    {
        var names = views.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var view in options.ViewSchedules.Keys.Where(k => !names.Contains(k)))
        {
            throw new ArgumentException(
                $"JobsOptions.ViewSchedules[{view}] names no view (views: {string.Join(", ", names.Order(StringComparer.Ordinal))})", nameof(options));
        }

        // Validate every cron before changing anything, so a bad one leaves the schedule as it was.
        var plan = new List<(string Id, Job Job, string Cron)>();
        foreach (var view in views)
        {
            var cron = options.ViewSchedules.TryGetValue(view.Name, out var overridden)
                ? overridden
                : view.BatchSchedule;
            var setting = overridden is null ? $"{view.SourceFile}: batch.schedule" : $"JobsOptions.ViewSchedules[{view.Name}]";
            JobsOptions.CheckCron(cron, setting, overridden is null ? nameof(views) : nameof(JobsOptions.ViewSchedules));
            var name = view.Name;
            plan.Add((BatchRecomputeJob.RecurringId(name), Job.FromExpression<BatchRecomputeJob>(j => j.RunAsync(name, CancellationToken.None)), cron));
        }

        JobsOptions.CheckCron(options.CompactionCron, "JobsOptions.CompactionCron", nameof(JobsOptions.CompactionCron));
        plan.Add((MasterCompactionJob.RecurringId, Job.FromExpression<MasterCompactionJob>(j => j.RunAsync(CancellationToken.None)), options.CompactionCron));
        plan.Add((PipelineStateRetentionJob.RecurringId, Job.FromExpression<PipelineStateRetentionJob>(j => j.RunAsync(CancellationToken.None)), PipelineStateRetentionJob.Cron));

        var recurringOptions = new RecurringJobOptions { TimeZone = TimeZoneInfo.Utc, MisfireHandling = MisfireHandlingMode.Relaxed };
        foreach (var (id, job, cron) in plan)
        {
            manager.AddOrUpdate(id, job, cron, recurringOptions);
        }

        using (var connection = storage.GetConnection())
        {
            var wanted = plan.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var stale in connection.GetRecurringJobs()
                .Where(j => j.Id.StartsWith(BatchRecomputeJob.RecurringIdPrefix, StringComparison.Ordinal) && !wanted.Contains(j.Id)))
            {
                manager.RemoveIfExists(stale.Id);
            }
        }

        return [.. plan.Select(p => $"{p.Id} ({p.Cron})")];
    }
}
