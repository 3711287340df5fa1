using System.Diagnostics;

namespace LambdaPlatform.Batch.Archive;

/// <summary>
/// The archiver's spans, on the activity source <see cref="SourceName"/> (registered by the host's composition helper):
/// <c>archive.publish</c>, one per publication of a partition's files (write, fsync, rename, progress, commit).
/// </summary>
public static class ArchiveTracing
{
    /// <summary>Name of the archiver's activity source: <c>LambdaPlatform.Archive</c>.</summary>
    public const string SourceName = "LambdaPlatform.Archive";

    /// <summary>The activity source.</summary>
    public static ActivitySource Source { get; } = new(SourceName);
}
