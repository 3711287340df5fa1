using System.Globalization;

namespace LambdaPlatform.Batch.Master;

/// <summary>An inclusive range of Kafka offsets of one partition.</summary>
/// <param name="First">First offset in the range.</param>
/// <param name="Last">Last offset in the range (inclusive, at least <paramref name="First"/>).</param>
public readonly record struct OffsetRange(long First, long Last)
{
    /// <summary>Whether this range contains every offset of <paramref name="other"/>.</summary>
    public bool Covers(OffsetRange other) => First <= other.First && other.Last <= Last;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"[{First}, {Last}]");
}

/// <summary>One hour folder of the master dataset: <c>date=YYYY-MM-DD/hour=HH</c>, from the event time in UTC.</summary>
/// <param name="Date">UTC date of the events.</param>
/// <param name="Hour">UTC hour of the events, 0 to 23.</param>
public readonly record struct HourKey(DateOnly Date, int Hour) : IComparable<HourKey>
{
    /// <summary>The hour an event time (UTC) falls in.</summary>
    public static HourKey Of(DateTime utc) => new(DateOnly.FromDateTime(utc), utc.Hour);

    /// <summary>The folder path relative to <c>master/events</c>, e.g. <c>date=2024-05-01/hour=07</c>.</summary>
    public string RelativePath => string.Create(CultureInfo.InvariantCulture, $"date={Date:yyyy-MM-dd}/hour={Hour:D2}");

    /// <inheritdoc />
    public int CompareTo(HourKey other) => Date != other.Date ? Date.CompareTo(other.Date) : Hour.CompareTo(other.Hour);

    /// <summary>Whether <paramref name="left"/> is an earlier hour.</summary>
    public static bool operator <(HourKey left, HourKey right) => left.CompareTo(right) < 0;

    /// <summary>Whether <paramref name="left"/> is a later hour.</summary>
    public static bool operator >(HourKey left, HourKey right) => left.CompareTo(right) > 0;

    /// <summary>Whether <paramref name="left"/> is the same or an earlier hour.</summary>
    public static bool operator <=(HourKey left, HourKey right) => left.CompareTo(right) <= 0;

    /// <summary>Whether <paramref name="left"/> is the same or a later hour.</summary>
    public static bool operator >=(HourKey left, HourKey right) => left.CompareTo(right) >= 0;

    /// <inheritdoc />
    public override string ToString() => RelativePath;
}

/// <summary>
/// A published (immutable) file of the master dataset:
/// <c>master/events/date=YYYY-MM-DD/hour=HH/&lt;partition&gt;-&lt;firstOffset&gt;-&lt;lastOffset&gt;.parquet</c>.
/// </summary>
/// <remarks>
/// Meaning of a file: it holds every valid event of Kafka partition <see cref="Partition"/> whose offset lies in
/// <see cref="Offsets"/> and whose event time falls in <see cref="Hour"/>, each exactly once, and nothing else.
/// Offsets of the range that are not in the file were invalid records or events of other hours (those are in the
/// files with the same range in the other hour folders).
/// </remarks>
/// <param name="Path">Full path of the file.</param>
/// <param name="Hour">Its hour folder.</param>
/// <param name="Partition">Kafka partition of its events.</param>
/// <param name="Offsets">Offset range it accounts for.</param>
public sealed record MasterFile(string Path, HourKey Hour, int Partition, OffsetRange Offsets)
{
    /// <summary>Extension of published files; temporary files never end with it.</summary>
    public const string Extension = ".parquet";

    /// <summary>The published file name for a partition and range: <c>&lt;partition&gt;-&lt;first&gt;-&lt;last&gt;.parquet</c>.</summary>
    public static string FileName(int partition, OffsetRange offsets) =>
        string.Create(CultureInfo.InvariantCulture, $"{partition}-{offsets.First}-{offsets.Last}{Extension}");

    /// <summary>
    /// Parses a published file name (<c>&lt;partition&gt;-&lt;first&gt;-&lt;last&gt;.parquet</c>); false for anything
    /// else, e.g. temporary files.
    /// </summary>
    public static bool TryParseName(ReadOnlySpan<char> fileName, out int partition, out OffsetRange offsets)
    {
        partition = 0;
        offsets = default;
        if (!fileName.EndsWith(Extension, StringComparison.Ordinal))
        {
            return false;
        }

        var stem = fileName[..^Extension.Length];
        var firstDash = stem.IndexOf('-');
        if (firstDash <= 0)
        {
            return false;
        }

        var rest = stem[(firstDash + 1)..];
        var secondDash = rest.IndexOf('-');
        if (secondDash <= 0
            || !int.TryParse(stem[..firstDash], NumberStyles.None, CultureInfo.InvariantCulture, out partition)
            || !long.TryParse(rest[..secondDash], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
            || !long.TryParse(rest[(secondDash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var last)
            || last < first)
        {
            partition = 0;
            return false;
        }

        offsets = new OffsetRange(first, last);
        return true;
    }

    /// <summary>Parses an hour folder name pair (<c>date=YYYY-MM-DD</c>, <c>hour=HH</c>).</summary>
    internal static bool TryParseHour(ReadOnlySpan<char> dateFolder, ReadOnlySpan<char> hourFolder, out HourKey hour)
    {
        hour = default;
        if (!TryParseDateFolder(dateFolder, out var date)
            || !hourFolder.StartsWith("hour=", StringComparison.Ordinal)
            || hourFolder.Length != 7
            || !int.TryParse(hourFolder[5..], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || h > 23)
        {
            return false;
        }

        hour = new HourKey(date, h);
        return true;
    }

    /// <summary>Parses a day folder name (<c>date=YYYY-MM-DD</c>).</summary>
    internal static bool TryParseDateFolder(ReadOnlySpan<char> dateFolder, out DateOnly date)
    {
        date = default;
        return dateFolder.StartsWith("date=", StringComparison.Ordinal)
            && DateOnly.TryParseExact(dateFolder[5..], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);
    }
}

/// <summary>What the published files prove about one Kafka partition.</summary>
/// <param name="Partition">The partition.</param>
/// <param name="Ranges">Merged, sorted, disjoint offset ranges accounted for by published files.</param>
/// <param name="MaxLastOffset">Highest last offset of any file: the archiver resumes after it.</param>
/// <param name="LatestFirstOffset">First offset of the file range that ends at <paramref name="MaxLastOffset"/>
/// (the latest publication, which a crash may have left partly published).</param>
public sealed record PartitionCoverage(int Partition, IReadOnlyList<OffsetRange> Ranges, long MaxLastOffset, long LatestFirstOffset)
{
    /// <summary>Whether one contiguous proven range contains all of <paramref name="range"/>.</summary>
    public bool Covers(OffsetRange range)
    {
        foreach (var r in Ranges)
        {
            if (r.Covers(range))
            {
                return true;
            }
        }

        return false;
    }
}
