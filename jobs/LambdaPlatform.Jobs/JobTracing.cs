using System.Diagnostics;
using System.Globalization;
using Hangfire.Common;
using Hangfire.Server;

namespace LambdaPlatform.Jobs;

/// <summary>
/// Hangfire jobs as spans, on the activity source <see cref="SourceName"/> (registered by the host's composition helper): a
/// server filter (<see cref="Filter"/>, added to the jobs' filter provider by <see cref="JobsServiceCollectionExtensions.AddLambdaJobs"/>)
/// starts <c>hangfire.job</c> before a job runs and ends it after, with the job's id, method and recurring-job id, so a batch
/// run's spans (<c>batch.run</c> …) and its ClickHouse statements are children of the job that ran them.
/// </summary>
public static class JobTracing
{
    /// <summary>Name of the jobs' activity source: <c>LambdaPlatform.Jobs</c>.</summary>
    public const string SourceName = "LambdaPlatform.Jobs";

    private const string ItemKey = "LambdaPlatform.Jobs.Activity";

    /// <summary>The activity source.</summary>
    public static ActivitySource Source { get; } = new(SourceName);

    /// <summary>The server filter that makes each job a span.</summary>
    public static IServerFilter Filter { get; } = new TracingFilter();

    private sealed class TracingFilter : JobFilterAttribute, IServerFilter
    {
        public void OnPerforming(PerformingContext context)
        {
            var job = context.BackgroundJob.Job;
            var name = job is null ? "hangfire.job" : $"hangfire.job {job.Type.Name}.{job.Method.Name}";

            // A root span: the job runs on a Hangfire worker thread, whatever scheduled it.
            var activity = Source.StartActivity(name, ActivityKind.Consumer, parentContext: default);
            if (activity is null)
            {
                return;
            }

            activity.SetTag("messaging.system", "hangfire");
            activity.SetTag("messaging.message.id", context.BackgroundJob.Id);
            activity.SetTag("code.function.name", job is null ? null : $"{job.Type.FullName}.{job.Method.Name}");
            if (context.GetJobParameter<string>("RecurringJobId") is { Length: > 0 } recurring)
            {
                activity.SetTag("lambda.job.recurring_id", recurring);
            }

            if (job?.Args is { Count: > 0 } args)
            {
                activity.SetTag("lambda.job.args", string.Join(", ", args.Select(a => Convert.ToString(a, CultureInfo.InvariantCulture) ?? "null")));
            }

            context.Items[ItemKey] = activity;
        }

        public void OnPerformed(PerformedContext context)
        {
            if (!context.Items.TryGetValue(ItemKey, out var item) || item is not Activity activity)
            {
                return;
            }

            if (context.Exception is { } e && !context.ExceptionHandled)
            {
                activity.SetStatus(ActivityStatusCode.Error, e.GetBaseException().Message.Split('\n')[0]);
                activity.SetTag("error.type", e.GetBaseException().GetType().Name);
            }
            else if (context.Canceled)
            {
                activity.SetTag("lambda.job.canceled", true);
            }

            activity.Dispose();
        }
    }
}
