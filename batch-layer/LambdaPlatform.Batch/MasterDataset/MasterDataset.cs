using System.Globalization;
using System.Text.Json;

namespace LambdaPlatform.Batch.Master;

/// <summary>
/// The immutable master dataset on a local (or mounted) file system, and the questions the batch layer asks of it.
/// </summary>
/// <remarks>
/// <para>Layout under <see cref="Root"/>:</para>
/// <code>
/// master/events/date=YYYY-MM-DD/hour=HH/&lt;partition&gt;-&lt;firstOffset&gt;-&lt;lastOffset&gt;.parquet   published files (see MasterFile)
/// master/events/date=YYYY-MM-DD/hour=HH/.&lt;name&gt;.&lt;guid&gt;.tmp                               being written; readers ignore them
/// master/_state/sequence                         the change counter (a decimal number)
/// master/_state/days/date=YYYY-MM-DD.json        {"date", "sequence", "changedAt"}: the counter value of the day's last change
/// master/_state/partitions/partition=P.json      {"partition", "through", "updatedAt"}: every valid record of Kafka partition P
///                                                 up to offset "through" is in published files (see RecordArchivedAsync)
/// master/_state/.lock                            serializes changes of the counter (an advisory lock, held for milliseconds)
/// </code>
/// <para>Files appear only by an atomic rename from a temporary name and never change afterwards. Readers glob
/// <c>*.parquet</c> (<see cref="DayGlob"/>) or, to also skip the inputs of a compaction that has not finished
/// deleting them, use <see cref="ListFiles(DateOnly)"/>.</para>
/// <para><b>Dirty days.</b> Every writer (the archiver, the compactor) calls <see cref="MarkChangedAsync"/> after it
/// published files of a day: the counter goes up by one and the day records the new value. A batch run reads
/// <see cref="CurrentSequence"/> <em>before</em> it lists any file, recomputes <see cref="DaysChangedSince"/>(the value
/// it saved last time), and then saves the value it read. A change that lands while the run is in flight gets a
/// higher number, so the next run picks the day up again: late events in an old day are never missed. Days may be
/// reported dirty without a content change (a compaction, or a retried publication): recomputing them is harmless.</para>
/// <para>Thread-safe: the object holds no mutable state; several processes may share one root on one machine.</para>
/// </remarks>
public sealed class MasterDataset
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);
    private readonly TimeProvider _clock;

    /// <summary>Opens (without touching the disk) the dataset under <paramref name="root"/>.</summary>
    /// <param name="root">Folder holding <c>master/</c>; created on the first publish.</param>
    /// <param name="clock">Clock for the <c>changedAt</c> stamps. Default <see cref="TimeProvider.System"/>.</param>
    public MasterDataset(string root, TimeProvider? clock = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>Full path of the root folder.</summary>
    public string Root { get; }

    /// <summary><c>&lt;root&gt;/master/events</c>: the published events.</summary>
    public string EventsPath => Path.Combine(Root, "master", "events");

    /// <summary><c>&lt;root&gt;/master/_state</c>: the change counter and per-day change records.</summary>
    public string StatePath => Path.Combine(Root, "master", "_state");

    private string DaysStatePath => Path.Combine(StatePath, "days");

    private string PartitionsStatePath => Path.Combine(StatePath, "partitions");

    private string SequencePath => Path.Combine(StatePath, "sequence");

    /// <summary>Folder of one hour, e.g. <c>&lt;root&gt;/master/events/date=2024-05-01/hour=07</c>.</summary>
    public string HourPath(HourKey hour) => Path.Combine(EventsPath, hour.RelativePath);

    /// <summary>Folder of one day, e.g. <c>&lt;root&gt;/master/events/date=2024-05-01</c>.</summary>
    public string DayPath(DateOnly day) => Path.Combine(EventsPath, string.Create(CultureInfo.InvariantCulture, $"date={day:yyyy-MM-dd}"));

    /// <summary>Path where a file for <paramref name="partition"/> and <paramref name="offsets"/> is published in an hour.</summary>
    public string FilePath(HourKey hour, int partition, OffsetRange offsets) => Path.Combine(HourPath(hour), MasterFile.FileName(partition, offsets));

    /// <summary>
    /// A glob of one day's published files for ClickHouse's <c>file(..., Parquet)</c>:
    /// <c>&lt;root&gt;/master/events/date=YYYY-MM-DD/*/*.parquet</c>. Temporary files never match it.
    /// </summary>
    public string DayGlob(DateOnly day) => Path.Combine(DayPath(day), "*", "*" + MasterFile.Extension);

    /// <summary>Days that have an events folder, in order.</summary>
    public IReadOnlyList<DateOnly> ListDays()
    {
        if (!Directory.Exists(EventsPath))
        {
            return [];
        }

        var days = new List<DateOnly>();
        foreach (var folder in Directory.EnumerateDirectories(EventsPath, "date=*"))
        {
            if (MasterFile.TryParseDateFolder(Path.GetFileName(folder.AsSpan()), out var day))
            {
                days.Add(day);
            }
        }

        days.Sort();
        return days;
    }

    /// <summary>
    /// The published files of one day (<c>date=YYYY-MM-DD/**/*.parquet</c>), sorted by hour, partition and offset,
    /// without files superseded by a compacted file (see <see cref="ListHour"/>).
    /// </summary>
    public IReadOnlyList<MasterFile> ListFiles(DateOnly day)
    {
        var files = new List<MasterFile>();
        var dayPath = DayPath(day);
        if (!Directory.Exists(dayPath))
        {
            return files;
        }

        var dayFolder = Path.GetFileName(dayPath);
        foreach (var hourFolder in Directory.EnumerateDirectories(dayPath, "hour=*"))
        {
            if (MasterFile.TryParseHour(dayFolder, Path.GetFileName(hourFolder.AsSpan()), out var hour))
            {
                files.AddRange(ListHour(hour));
            }
        }

        files.Sort(Compare);
        return files;
    }

    /// <summary>Every published file of the dataset (see <see cref="ListFiles(DateOnly)"/>).</summary>
    public IReadOnlyList<MasterFile> ListFiles()
    {
        var files = new List<MasterFile>();
        foreach (var day in ListDays())
        {
            files.AddRange(ListFiles(day));
        }

        return files;
    }

    /// <summary>The published files of one hour folder, sorted by partition and offset.</summary>
    /// <param name="hour">The hour.</param>
    /// <param name="includeSuperseded">
    /// Also return files whose range is inside the range of another file of the same partition in this folder: the
    /// inputs of a compaction whose output is published but which were not deleted yet. Default false: such files
    /// hold only rows that the covering file holds too.
    /// </param>
    public IReadOnlyList<MasterFile> ListHour(HourKey hour, bool includeSuperseded = false)
    {
        var folder = HourPath(hour);
        var files = new List<MasterFile>();
        if (!Directory.Exists(folder))
        {
            return files;
        }

        foreach (var path in Directory.EnumerateFiles(folder, "*" + MasterFile.Extension))
        {
            if (MasterFile.TryParseName(Path.GetFileName(path.AsSpan()), out var partition, out var offsets))
            {
                files.Add(new MasterFile(path, hour, partition, offsets));
            }
        }

        files.Sort(Compare);
        return includeSuperseded ? files : WithoutSuperseded(files);
    }

    /// <summary>
    /// What the published files prove, per Kafka partition: the merged offset ranges they account for and the
    /// highest last offset. Reads only file names (one directory walk over the whole dataset).
    /// </summary>
    public IReadOnlyDictionary<int, PartitionCoverage> ProvenOffsets() => Coverage(ListFiles());

    /// <summary>The coverage per partition of a set of files (see <see cref="ProvenOffsets"/>).</summary>
    public static IReadOnlyDictionary<int, PartitionCoverage> Coverage(IEnumerable<MasterFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var result = new Dictionary<int, PartitionCoverage>();
        foreach (var group in files.GroupBy(f => f.Partition))
        {
            var ranges = group.Select(f => f.Offsets).Distinct().OrderBy(r => r.First).ThenBy(r => r.Last).ToList();
            var merged = new List<OffsetRange>();
            foreach (var r in ranges)
            {
                if (merged.Count > 0 && r.First <= merged[^1].Last + 1)
                {
                    merged[^1] = merged[^1] with { Last = Math.Max(merged[^1].Last, r.Last) };
                }
                else
                {
                    merged.Add(r);
                }
            }

            var maxLast = ranges.Max(r => r.Last);
            var latestFirst = ranges.Where(r => r.Last == maxLast).Max(r => r.First);
            result[group.Key] = new PartitionCoverage(group.Key, merged, maxLast, latestFirst);
        }

        return result;
    }

    /// <summary>The change counter now: 0 before the first change. Read it before listing files for a batch run.</summary>
    /// <exception cref="MasterDatasetException">The counter file is corrupt.</exception>
    public long CurrentSequence()
    {
        string text;
        try
        {
            text = File.ReadAllText(SequencePath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return 0;
        }

        return long.TryParse(text.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new MasterDatasetException($"'{SequencePath}' does not hold a number", SequencePath);
    }

    /// <summary>
    /// Days whose files changed after the counter had the value <paramref name="sequence"/> (their recorded sequence is
    /// higher), in order. Pass 0 for every day that ever changed.
    /// </summary>
    public IReadOnlyList<DateOnly> DaysChangedSince(long sequence) =>
        [.. ListDayStates().Where(d => d.Sequence > sequence).Select(d => d.Date)];

    /// <summary>The change record of every day that has one, in date order.</summary>
    public IReadOnlyList<DayState> ListDayStates()
    {
        if (!Directory.Exists(DaysStatePath))
        {
            return [];
        }

        var states = new List<DayState>();
        foreach (var path in Directory.EnumerateFiles(DaysStatePath, "date=*.json"))
        {
            if (ReadDayState(path) is { } state)
            {
                states.Add(state);
            }
        }

        states.Sort((a, b) => a.Date.CompareTo(b.Date));
        return states;
    }

    /// <summary>The change record of one day, or <see langword="null"/> if the day never changed.</summary>
    public DayState? GetDayState(DateOnly day) => ReadDayState(DayStatePath(day));

    /// <summary>
    /// Records that files of <paramref name="days"/> were published or removed: increments the change counter once and
    /// stamps each day with the new value. Call it after the files are in place (renamed), never before.
    /// </summary>
    /// <returns>The new counter value (the current one when <paramref name="days"/> is empty).</returns>
    /// <exception cref="IOException">The state folder cannot be written, or its lock was not free within 30 s.</exception>
    public async Task<long> MarkChangedAsync(IEnumerable<DateOnly> days, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(days);
        var distinct = days.Distinct().Order().ToList();
        if (distinct.Count == 0)
        {
            return CurrentSequence();
        }

        Durable.CreateDirectory(DaysStatePath);
        using var held = await AcquireLockAsync(cancellationToken);
        var sequence = CurrentSequence() + 1;
        var now = _clock.GetUtcNow();

        // Days first, counter second: a crash in between leaves a day ahead of the counter, which readers still
        // report as changed (its number is above every value they can have read); the other order could lose a change.
        foreach (var day in distinct)
        {
            var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("date", day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                json.WriteNumber("sequence", sequence);
                json.WriteString("changedAt", now);
                json.WriteEndObject();
            }

            await ReplaceAsync(DayStatePath(day), buffer.ToArray(), cancellationToken);
        }

        await ReplaceAsync(SequencePath, System.Text.Encoding.ASCII.GetBytes(sequence.ToString(CultureInfo.InvariantCulture)), cancellationToken);
        Durable.SyncDirectory(DaysStatePath);
        Durable.SyncDirectory(StatePath);
        return sequence;
    }

    /// <summary>
    /// Records that every valid record of Kafka partition <paramref name="partition"/> up to offset <paramref name="through"/>
    /// (inclusive) is in published files. The archiver calls it after a publication's files are renamed and its days
    /// marked changed, and before it commits the offsets: so the record never claims more than the files hold. It
    /// only moves forward (a smaller value than the recorded one is ignored). This is what the batch layer checks
    /// before it moves a view's watermark over a day (<see cref="ArchivedThrough"/>).
    /// </summary>
    /// <exception cref="IOException">The state folder cannot be written, or its lock was not free within 30 s.</exception>
    public async Task RecordArchivedAsync(int partition, long through, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        Durable.CreateDirectory(PartitionsStatePath);
        using var held = await AcquireLockAsync(cancellationToken);
        var path = Path.Combine(PartitionsStatePath, string.Create(CultureInfo.InvariantCulture, $"partition={partition}.json"));
        if (ReadArchived(path) is { } recorded && recorded >= through)
        {
            return;
        }

        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("partition", partition);
            json.WriteNumber("through", through);
            json.WriteString("updatedAt", _clock.GetUtcNow());
            json.WriteEndObject();
        }

        await ReplaceAsync(path, buffer.ToArray(), cancellationToken);
        Durable.SyncDirectory(PartitionsStatePath);
    }

    /// <summary>
    /// Per Kafka partition, the offset through which every valid record is in published files (as recorded by
    /// <see cref="RecordArchivedAsync"/>); partitions never archived are absent.
    /// </summary>
    public IReadOnlyDictionary<int, long> ArchivedThrough()
    {
        var result = new Dictionary<int, long>();
        if (!Directory.Exists(PartitionsStatePath))
        {
            return result;
        }

        foreach (var path in Directory.EnumerateFiles(PartitionsStatePath, "partition=*.json"))
        {
            var name = Path.GetFileNameWithoutExtension(path)["partition=".Length..];
            if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var partition) && ReadArchived(path) is { } through)
            {
                result[partition] = through;
            }
        }

        return result;
    }


    /// <summary>Drops files covered by another file of the same partition; <paramref name="sorted"/> is one folder, sorted.</summary>
    internal static List<MasterFile> WithoutSuperseded(List<MasterFile> sorted)
    {
        var kept = new List<MasterFile>(sorted.Count);
        var i = 0;
        while (i < sorted.Count)
        {
            // One partition: by first offset, and for equal firsts the widest range first, so a file is covered
            // exactly when an earlier file reaches at least as far.
            var j = i;
            while (j < sorted.Count && sorted[j].Partition == sorted[i].Partition)
            {
                j++;
            }

            var group = sorted.GetRange(i, j - i);
            group.Sort((a, b) => a.Offsets.First != b.Offsets.First ? a.Offsets.First.CompareTo(b.Offsets.First) : b.Offsets.Last.CompareTo(a.Offsets.Last));
            var reach = long.MinValue;
            foreach (var f in group)
            {
                if (f.Offsets.Last > reach)
                {
                    kept.Add(f);
                    reach = f.Offsets.Last;
                }
            }

            i = j;
        }

        kept.Sort(Compare);
        return kept;
    }

    private static int Compare(MasterFile a, MasterFile b)
    {
        var c = a.Hour.CompareTo(b.Hour);
        if (c == 0)
        {
            c = a.Partition.CompareTo(b.Partition);
        }

        if (c == 0)
        {
            c = a.Offsets.First.CompareTo(b.Offsets.First);
        }

        return c != 0 ? c : a.Offsets.Last.CompareTo(b.Offsets.Last);
    }

    private string DayStatePath(DateOnly day) =>
        Path.Combine(DaysStatePath, string.Create(CultureInfo.InvariantCulture, $"date={day:yyyy-MM-dd}.json"));

    private static DayState? ReadDayState(string path) => ReadRecord(path, "a day change record", root => new DayState(
        DateOnly.ParseExact(root.GetProperty("date").GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture),
        root.GetProperty("sequence").GetInt64(),
        root.GetProperty("changedAt").GetDateTimeOffset()));

    private static long? ReadArchived(string path) => ReadRecord(path, "a partition archive record", root => (long?)root.GetProperty("through").GetInt64());

    /// <summary>Reads a JSON state record; null when the file does not exist; a corrupt one throws naming the file.</summary>
    private static T? ReadRecord<T>(string path, string what, Func<JsonElement, T> parse)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return default;
        }

        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return parse(doc.RootElement);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            throw new MasterDatasetException($"'{path}' is not {what}: {e.Message}", path, e);
        }
    }

    private static async Task ReplaceAsync(string path, byte[] content, CancellationToken cancellationToken)
    {
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        await using (stream)
        {
            await stream.WriteAsync(content, cancellationToken);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private async Task<FileStream> AcquireLockAsync(CancellationToken cancellationToken)
    {
        // Real time, not the injected clock: a fake clock would never let the retry delay end.
        var path = Path.Combine(StatePath, ".lock");
        var started = TimeProvider.System.GetTimestamp();
        var delay = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive advisory lock (flock) on Unix: other holders get an IOException.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (TimeProvider.System.GetElapsedTime(started) < LockTimeout && File.Exists(path))
            {
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 50));
            }
        }
    }
}

/// <summary>The change record of one day of the master dataset.</summary>
/// <param name="Date">The day (UTC, by event time).</param>
/// <param name="Sequence">Value of the change counter at the day's last change.</param>
/// <param name="ChangedAt">When that change was recorded.</param>
public sealed record DayState(DateOnly Date, long Sequence, DateTimeOffset ChangedAt);
