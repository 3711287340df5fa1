using LambdaPlatform.Batch.Master;

namespace LambdaPlatform.Batch.Archive;

/// <summary>What a consumed record became in a <see cref="PartitionArchive"/>.</summary>
public enum RecordOutcome
{
    /// <summary>A valid event, buffered for the file of its hour: the caller adds its row to that hour's buffer.</summary>
    Buffered,

    /// <summary>A valid event of an hour whose file of the range under repair already exists: not written again (its day is still marked changed).</summary>
    AlreadyPublished,

    /// <summary>An invalid record: accounted for by the range, written nowhere.</summary>
    Invalid,
}

/// <summary>What a rebalance does with a partition that is taken away (<see cref="PartitionArchive.Handover"/>).</summary>
public enum Handover
{
    /// <summary>Nothing consumed since the last publication: nothing to hand over.</summary>
    Nothing,

    /// <summary>Publish the buffered range first (one attempt), so that the next owner resumes after it.</summary>
    PublishFirst,

    /// <summary>Drop what was read: a repair in progress is repeated by the next owner from what the files prove.</summary>
    Drop,
}

/// <summary>
/// The archive of one Kafka partition as a pure state machine: which offset to resume at (from what the published
/// files prove and the committed offset), what is buffered, when to publish, what one publication writes, records and
/// commits, and what a rebalance hands over. It does no I/O and reads no clock (times are passed in as
/// <see cref="TimeProvider"/> timestamps), so every step of the exactly-once protocol can be driven and checked without
/// Kafka or a disk. The rows themselves live with the caller, per hour (<see cref="RecordOutcome.Buffered"/>).
/// </summary>
/// <remarks>
/// <para><b>Resume.</b> Let <c>[F, L]</c> be the partition's latest published range (the range ending at the highest
/// last offset of its files) and <c>C</c> its committed offset. No file: resume at <c>C</c> (or the group's reset
/// policy). <c>C &gt; L</c>: resume at <c>C</c>. Otherwise the latest publication may have been cut short by a crash
/// (some of its hour files renamed, others not): re-read exactly <c>[F, L]</c> (<see cref="Repairing"/>), buffer only
/// the events of hours with no file for that range, publish them under the same range when <c>L</c> is read (or
/// when a later offset shows that <c>L</c> is gone), then carry on from <c>L + 1</c>. No range already in a file is
/// written again, and none is skipped.</para>
/// <para><b>One publication</b> (<see cref="ArchivePublisher"/> runs it): write the file of each buffered hour not yet
/// renamed (<see cref="HoursToWrite"/>, then <see cref="Renamed"/>), all named <see cref="PublicationRange"/>; mark
/// <see cref="DaysChanged"/>; when <see cref="RecordsArchive"/>, record the partition archived through the range's last
/// offset; then the caller commits <see cref="CommitOffset"/> and calls <see cref="Completed"/>. A range of invalid
/// records only stays open and is published with the next valid event, so published ranges stay contiguous.</para>
/// <para>Not thread-safe: one owner (the archiver's consume thread).</para>
/// </remarks>
public sealed class PartitionArchive
{
    private readonly SortedDictionary<HourKey, int> _hours = [];
    private readonly HashSet<HourKey> _renamed = [];
    private readonly HashSet<DateOnly> _touchedDays = [];
    private readonly HashSet<HourKey> _repairPresent;
    private long? _first;
    private long _last = -1;

    private PartitionArchive(int partition, long? resumeAt, OffsetRange? repair, HashSet<HourKey> repairPresent)
    {
        Partition = partition;
        ResumeAt = resumeAt;
        Repairing = repair;
        _repairPresent = repairPresent;
    }

    /// <summary>The Kafka partition.</summary>
    public int Partition { get; }

    /// <summary>Where consumption starts after the assignment; null when there is neither a commit nor a file (the group's reset policy decides).</summary>
    public long? ResumeAt { get; }

    /// <summary>The latest publication's range while it is being re-read and completed, else null.</summary>
    public OffsetRange? Repairing { get; private set; }

    /// <summary>Hours that already have a file of <see cref="Repairing"/>'s range (their events are not written again).</summary>
    public IReadOnlySet<HourKey> RepairPresent => _repairPresent;

    /// <summary>Valid events buffered since the last publication.</summary>
    public int Events { get; private set; }

    /// <summary>Events buffered per hour.</summary>
    public IReadOnlyDictionary<HourKey, int> Hours => _hours;

    /// <summary>Whether a record was consumed since the last publication (its offset is not committed).</summary>
    public bool Uncommitted { get; private set; }

    /// <summary><see cref="TimeProvider"/> timestamp of the first record of the open range (its age triggers a publication).</summary>
    public long OpenedAt { get; private set; }

    /// <summary>What a graceful revocation or shutdown publishes: an open range that is not a repair.</summary>
    public bool Pending => Repairing is null && Uncommitted;

    /// <summary>What a rebalance does with this partition when it is revoked (the next owner resumes from the files and the commit).</summary>
    public Handover Handover => Pending ? Handover.PublishFirst : Uncommitted || Repairing is not null ? Handover.Drop : Handover.Nothing;

    /// <summary>The range the next publication accounts for (its files' names): the repair range, or the open range.</summary>
    public OffsetRange PublicationRange => Repairing ?? new OffsetRange(_first ?? _last, _last);

    /// <summary>The offset committed after the publication: the range's last offset plus one.</summary>
    public long CommitOffset => PublicationRange.Last + 1;

    /// <summary>Buffered hours whose file is not in place yet, in hour order: what the publication (still) writes.</summary>
    public IReadOnlyList<HourKey> HoursToWrite => [.. _hours.Where(h => h.Value > 0 && !_renamed.Contains(h.Key)).Select(h => h.Key)];

    /// <summary>Days whose files the publication changes (buffered hours, and hours skipped during a repair).</summary>
    public IReadOnlyList<DateOnly> DaysChanged => [.. _hours.Keys.Select(h => h.Date).Concat(_touchedDays).Distinct().Order()];

    /// <summary>
    /// Whether, once its files are in place, the publication proves the partition archived through the range's last offset:
    /// true when it renamed a file or completes a repair; false for a range of invalid records only (it stays open).
    /// </summary>
    public bool RecordsArchive => _renamed.Count > 0 || Repairing is not null;

    /// <summary>
    /// The archive of <paramref name="partition"/> as it resumes after an assignment: from the published files (their names
    /// prove ranges) and the committed offset. The files are trusted over the commit.
    /// </summary>
    /// <param name="partition">The partition.</param>
    /// <param name="committed">The group's committed offset, or null when none.</param>
    /// <param name="files">Published files (of any partitions; others are ignored).</param>
    public static PartitionArchive Resume(int partition, long? committed, IEnumerable<MasterFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var mine = files.Where(f => f.Partition == partition).ToList();
        if (mine.Count == 0 || !MasterDataset.Coverage(mine).TryGetValue(partition, out var proven))
        {
            return new PartitionArchive(partition, committed, null, []);
        }

        if (committed is { } c && c > proven.MaxLastOffset)
        {
            return new PartitionArchive(partition, c, null, []);
        }

        // The latest publication may be incomplete: re-read its range, write only its missing hours.
        var range = new OffsetRange(proven.LatestFirstOffset, proven.MaxLastOffset);
        var present = mine.Where(f => f.Offsets.Covers(range)).Select(f => f.Hour).ToHashSet();
        return new PartitionArchive(partition, range.First, range, present);
    }

    /// <summary>
    /// Whether the record at <paramref name="offset"/> shows that the range under repair ends before it (its last records
    /// are gone, e.g. by retention): then publish the repair with what was read before accepting the record.
    /// </summary>
    public bool FinishesRepairBefore(long offset) => Repairing is { } r && offset > r.Last;

    /// <summary>Takes the record at <paramref name="offset"/>: a valid event of <paramref name="validHour"/>, or an invalid record (null).</summary>
    /// <param name="offset">Its offset (records arrive in offset order).</param>
    /// <param name="validHour">The hour of its event time when it is a valid event; null when invalid.</param>
    /// <param name="now">The <see cref="TimeProvider"/> timestamp now (opens the range's age).</param>
    /// <exception cref="InvalidOperationException">A repair must be published first (<see cref="FinishesRepairBefore"/>).</exception>
    public RecordOutcome Accept(long offset, HourKey? validHour, long now)
    {
        if (FinishesRepairBefore(offset))
        {
            throw new InvalidOperationException($"partition {Partition}: offset {offset} is past the repair range {Repairing}; publish the repair first");
        }

        if (Repairing is null && _first is null)
        {
            _first = offset;
            OpenedAt = now;
        }

        _last = offset;
        Uncommitted = true;
        if (validHour is not { } hour)
        {
            return RecordOutcome.Invalid;
        }

        if (Repairing is not null && _repairPresent.Contains(hour))
        {
            _touchedDays.Add(hour.Date);
            return RecordOutcome.AlreadyPublished;
        }

        _hours[hour] = _hours.GetValueOrDefault(hour) + 1;
        Events++;
        return RecordOutcome.Buffered;
    }

    /// <summary>Whether to publish now: a repair when its last offset was read; otherwise when <paramref name="maxFileEvents"/> events are buffered.</summary>
    public bool ShouldPublish(int maxFileEvents) => Repairing is { } r ? Uncommitted && _last >= r.Last : Events >= maxFileEvents;

    /// <summary>Whether the open range is due by age (never a repair: it completes when its last offset is read).</summary>
    /// <param name="age">Time since <see cref="OpenedAt"/>.</param>
    /// <param name="maxFileAge">The archiver's <see cref="ArchiverOptions.MaxFileAge"/>.</param>
    public bool IsDue(TimeSpan age, TimeSpan maxFileAge) => Repairing is null && Uncommitted && age >= maxFileAge;

    /// <summary>The file of <paramref name="hour"/> for <see cref="PublicationRange"/> is in place: a retry of the publication does not write it again.</summary>
    public void Renamed(HourKey hour) => _renamed.Add(hour);

    /// <summary>
    /// The publication is committed (<see cref="CommitOffset"/>): the buffers are empty again and the repair, if any, is
    /// done. A range of invalid records only stays open (re-aged from <paramref name="now"/>) so ranges stay contiguous.
    /// </summary>
    public void Completed(long now)
    {
        var carryOver = _renamed.Count == 0 && Repairing is null;
        Clear();
        Repairing = null;
        Uncommitted = false;
        if (carryOver)
        {
            OpenedAt = now;
        }
        else
        {
            _first = null;
        }
    }

    /// <summary>Forgets what was buffered (the partition was revoked or lost, or the archiver stops); the next owner reads it again.</summary>
    public void Clear()
    {
        _hours.Clear();
        _renamed.Clear();
        _touchedDays.Clear();
        Events = 0;
    }
}
