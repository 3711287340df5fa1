using LambdaPlatform.Batch.Master;
using LambdaPlatform.Kafka;

namespace LambdaPlatform.Batch.Archive;

/// <summary>Settings of the <see cref="Archiver"/>. Validated at start-up; a bad value names itself.</summary>
public sealed record ArchiverOptions
{
    /// <summary>Kafka bootstrap servers, e.g. <c>127.0.0.1:9092</c>. Required.</summary>
    public string BootstrapServers { get; init; } = string.Empty;

    /// <summary>Consumer group; instances with the same group share the partitions. Default <c>archive</c>.</summary>
    public string GroupId { get; init; } = "archive";

    /// <summary>Topic to archive. Default <c>events</c>. One master dataset root holds one topic.</summary>
    public string Topic { get; init; } = Topics.Events;

    /// <summary>Folder holding the master dataset (<c>master/</c> is created inside it). Required.</summary>
    public string RootPath { get; init; } = string.Empty;

    /// <summary>
    /// Valid events of one partition buffered before its files are published (so also the most rows per file).
    /// Default 200,000.
    /// </summary>
    public int MaxFileEvents { get; init; } = 200_000;

    /// <summary>
    /// Longest time a consumed record of a partition waits before its files are published and its offset committed.
    /// Default 15 s.
    /// </summary>
    public TimeSpan MaxFileAge { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Valid events buffered over all partitions (bounds memory); past it the partition with the most events is
    /// published. Default 1,000,000 (about 250 MB of seed-shaped events).
    /// </summary>
    public int MaxBufferedEvents { get; init; } = 1_000_000;

    /// <summary>Codec of the files. Default <see cref="MasterCompression.Zstd"/>.</summary>
    public MasterCompression Compression { get; init; } = MasterCompression.Zstd;

    /// <summary>First wait before retrying a failed publication; doubles up to <see cref="RetryMaxDelay"/>. Default 100 ms.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait between publication retries. Default 10 s.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Test-only fault points (crash between rename and commit). Null in production.</summary>
    internal ArchiverFaults? Faults { get; init; }

    /// <summary>Throws when a setting is missing or out of range, naming it.</summary>
    /// <returns>This instance.</returns>
    public ArchiverOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(BootstrapServers))
        {
            throw new ArgumentException("BootstrapServers is required (the Kafka bootstrap servers, e.g. 127.0.0.1:9092)", nameof(BootstrapServers));
        }

        if (string.IsNullOrWhiteSpace(GroupId))
        {
            throw new ArgumentException("GroupId must not be empty", nameof(GroupId));
        }

        if (string.IsNullOrWhiteSpace(Topic))
        {
            throw new ArgumentException("Topic must not be empty", nameof(Topic));
        }

        if (string.IsNullOrWhiteSpace(RootPath))
        {
            throw new ArgumentException("RootPath is required (the folder of the master dataset)", nameof(RootPath));
        }

        if (MaxFileEvents <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFileEvents), MaxFileEvents, "MaxFileEvents must be positive");
        }

        if (MaxFileAge <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFileAge), MaxFileAge, "MaxFileAge must be positive");
        }

        if (MaxBufferedEvents < MaxFileEvents)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedEvents), MaxBufferedEvents, "MaxBufferedEvents must be at least MaxFileEvents");
        }

        if (!Enum.IsDefined(Compression))
        {
            throw new ArgumentOutOfRangeException(nameof(Compression), Compression, "Compression must be Zstd or Snappy");
        }

        if (RetryBaseDelay <= TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(RetryBaseDelay), RetryBaseDelay, "RetryBaseDelay must be positive and at most RetryMaxDelay");
        }

        return this;
    }
}

/// <summary>Fault points for tests: each runs on the consume thread and may throw to simulate a crash there.</summary>
internal sealed class ArchiverFaults
{
    /// <summary>After each file of a publication is renamed into place.</summary>
    public Action<MasterFile>? AfterRename { get; init; }

    /// <summary>After every file of a publication is in place and its days are marked, before the offset commit.</summary>
    public Action<ArchivePublication>? BeforeCommit { get; init; }
}

/// <summary>Files published together for one partition and offset range, followed by one offset commit.</summary>
/// <param name="Partition">Kafka partition.</param>
/// <param name="Offsets">The consumed offset range they account for (invalid records included).</param>
/// <param name="Files">The files written, one per hour folder with events (none when every record was invalid).</param>
/// <param name="Events">Valid events written.</param>
public sealed record ArchivePublication(int Partition, OffsetRange Offsets, IReadOnlyList<MasterFile> Files, int Events);
