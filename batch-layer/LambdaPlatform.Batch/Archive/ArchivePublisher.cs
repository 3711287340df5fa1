using LambdaPlatform.Batch.Master;

namespace LambdaPlatform.Batch.Archive;

/// <summary>The file-system steps of a publication, in the order <see cref="ArchivePublisher"/> runs them.</summary>
internal interface IArchiveFiles
{
    /// <summary>
    /// Writes the rows buffered for <paramref name="hour"/> of <paramref name="partition"/> as the file named
    /// <paramref name="range"/> in the hour's folder, durably, appearing by an atomic rename. A file of that name that
    /// already exists (the same records, from an earlier attempt) is kept.
    /// </summary>
    /// <returns>The file and its size in bytes.</returns>
    Task<(MasterFile File, long Bytes)> WriteAsync(int partition, HourKey hour, OffsetRange range, CancellationToken cancellationToken);

    /// <summary>Marks <paramref name="days"/> changed (<see cref="MasterDataset.MarkChangedAsync"/>).</summary>
    Task MarkChangedAsync(IReadOnlyList<DateOnly> days, CancellationToken cancellationToken);

    /// <summary>Records <paramref name="partition"/> archived through <paramref name="through"/> (<see cref="MasterDataset.RecordArchivedAsync"/>).</summary>
    Task RecordArchivedAsync(int partition, long through, CancellationToken cancellationToken);
}

/// <summary>What one publication put in place (before its offsets are committed).</summary>
/// <param name="Partition">Kafka partition.</param>
/// <param name="Range">The offset range its files are named by.</param>
/// <param name="Files">Files renamed into place by this publication (over all its attempts).</param>
/// <param name="Bytes">Their total size.</param>
/// <param name="Events">Valid events in them.</param>
/// <param name="RecordsArchive">Whether it recorded the partition archived through <c>Range.Last</c> (and so reports progress).</param>
internal sealed record PublicationResult(int Partition, OffsetRange Range, IReadOnlyList<MasterFile> Files, long Bytes, int Events, bool RecordsArchive);

/// <summary>
/// Runs one publication of a <see cref="PartitionArchive"/> against <see cref="IArchiveFiles"/>: each buffered hour's file
/// (renamed into place, never written twice), then the changed days, then — when the files now hold every valid record
/// of the range — the archived-through record. The caller commits afterwards. Disk errors (<see cref="IOException"/>,
/// <see cref="UnauthorizedAccessException"/>) are retried with exponential backoff when asked to, resuming where the
/// attempt failed; anything else (a crash) propagates at once.
/// </summary>
/// <param name="clock">Clock of the retry delays.</param>
/// <param name="baseDelay">First retry delay; doubles up to <paramref name="maxDelay"/>.</param>
/// <param name="maxDelay">Longest retry delay.</param>
/// <param name="faults">Test-only crash points, or null.</param>
internal sealed class ArchivePublisher(TimeProvider clock, TimeSpan baseDelay, TimeSpan maxDelay, ArchiverFaults? faults = null)
{
    /// <summary>Publishes what <paramref name="archive"/> buffered through <paramref name="files"/>.</summary>
    /// <param name="archive">The partition's archive; told about each renamed file.</param>
    /// <param name="files">The file-system steps.</param>
    /// <param name="retry">Retry disk errors (false: one attempt, e.g. on revocation or shutdown).</param>
    /// <param name="failed">Told about each failed attempt: attempt number, the delay before the next, the error.</param>
    /// <param name="cancellationToken">Stops the retries.</param>
    public async Task<PublicationResult> PublishAsync(PartitionArchive archive, IArchiveFiles files, bool retry, Action<int, TimeSpan, Exception>? failed,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(archive);
        ArgumentNullException.ThrowIfNull(files);
        var range = archive.PublicationRange;
        var written = new List<MasterFile>();
        long bytes = 0;
        var events = 0;
        var delay = baseDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                foreach (var hour in archive.HoursToWrite)
                {
                    var (file, size) = await files.WriteAsync(archive.Partition, hour, range, cancellationToken);
                    archive.Renamed(hour);
                    written.Add(file);
                    bytes += size;
                    events += archive.Hours[hour];
                    faults?.AfterRename?.Invoke(file);
                }

                await files.MarkChangedAsync(archive.DaysChanged, cancellationToken);
                if (archive.RecordsArchive)
                {
                    // The files now hold every valid record of the range: say so before committing (the batch layer's
                    // watermark waits for it). A range of invalid records only stays open and is recorded with the next.
                    await files.RecordArchivedAsync(archive.Partition, range.Last, cancellationToken);
                }

                return new PublicationResult(archive.Partition, range, written, bytes, events, archive.RecordsArchive);
            }
            catch (Exception e) when (retry && e is IOException or UnauthorizedAccessException)
            {
                failed?.Invoke(attempt, delay, e);
                await Task.Delay(delay, clock, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, maxDelay.Ticks));
            }
        }
    }
}
