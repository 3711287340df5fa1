using System.Diagnostics;

namespace LambdaPlatform.Batch.Recompute;

/// <summary>
/// The batch recompute's spans, on the activity source <see cref="SourceName"/> (registered by the host's composition helper):
/// <c>batch.run</c> for a run, <c>batch.day</c> per view and day with its steps as children (<c>batch.compute</c>: the exact
/// view as Parquet; <c>batch.load</c>: into a staging table; <c>batch.swap</c>: REPLACE PARTITION; <c>batch.watermark</c>: W
/// moved, the accuracy report and the real-time day dropped), each with the ClickHouse statements it ran.
/// </summary>
public static class BatchTracing
{
    /// <summary>Name of the batch recompute's activity source: <c>LambdaPlatform.Batch</c>.</summary>
    public const string SourceName = "LambdaPlatform.Batch";

    /// <summary>The activity source.</summary>
    public static ActivitySource Source { get; } = new(SourceName);
}
