using System.Globalization;
using System.Text.RegularExpressions;
using Parquet;
using Parquet.Schema;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>What the master dataset holds compared with the offsets Kafka acknowledged for valid events.</summary>
/// <param name="Rows">Rows in every <c>*.parquet</c> file under <c>master/</c>.</param>
/// <param name="Missing">Acknowledged valid (partition, offset) pairs with no row.</param>
/// <param name="Duplicated">Rows beyond the first for one (partition, offset), plus rows of offsets never acknowledged as valid.</param>
/// <param name="Files">Files read.</param>
/// <param name="Superseded">Files whose offset range lies inside another file's range of the same partition in the same hour folder (counted like any other).</param>
/// <param name="Misplaced">Rows whose partition, offset or event hour does not match their file's name and folder, plus rows of files not named as published files.</param>
/// <param name="Problems">The first offending rows and files, for the log.</param>
public sealed record MasterComparison(long Rows, long Missing, long Duplicated, int Files, int Superseded, long Misplaced, IReadOnlyList<string> Problems)
{
    /// <summary>Every valid offset once, nothing else, every row where its file says.</summary>
    public bool Exact => Missing == 0 && Duplicated == 0 && Misplaced == 0;
}

/// <summary>
/// Reads the master dataset independently of the platform: it enumerates every <c>*.parquet</c> file under
/// <c>&lt;root&gt;/master</c> itself (not through <c>MasterDataset.ListFiles</c>, which hides superseded files), reads
/// each with Parquet.Net by column name, and requires every acknowledged valid (partition, offset) exactly once among
/// them, nothing else, and every row in the file its name and folder promise (<c>date=YYYY-MM-DD/hour=HH/P-F-L.parquet</c>:
/// partition P, offset in [F, L], event time in that hour).
/// </summary>
/// <remarks>
/// <b>Superseded files count.</b> A file whose range lies inside another file's range (the inputs of a compaction
/// whose output is in place) is not excused: the batch layer reads every file matching its day glob
/// (<c>date=D/*/*.parquet</c>, <c>BatchRecompute</c>), superseded or not, so no reader provably ignores it; only the
/// batch's de-duplication by eventId would hide its rows, and this check does not rely on that. The chaos suite runs no
/// compactor, so any superseded file is an error here. Temporary files (<c>.*.tmp</c>) never match <c>*.parquet</c>
/// and are ignored, as by every reader.
/// </remarks>
public static partial class MasterDatasetCheck
{
    /// <summary>Compares the dataset under <paramref name="dataRoot"/> with <paramref name="validOffsets"/>.</summary>
    public static async Task<MasterComparison> CompareAsync(string dataRoot, OffsetSet validOffsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(validOffsets);
        var master = Path.Combine(dataRoot, "master");
        var files = Directory.Exists(master) ? Directory.EnumerateFiles(master, "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList() : [];
        var seen = new Dictionary<int, List<byte>>();
        var problems = new List<string>();
        long rows = 0, misplaced = 0;
        var named = new List<(string Folder, int Partition, long First, long Last, string Path)>();
        foreach (var path in files)
        {
            var name = Name().Match(Path.GetFileName(path));
            var folder = Folder().Match(Path.GetRelativePath(master, Path.GetDirectoryName(path)!).Replace('\\', '/'));
            int? partition = null;
            long first = 0, last = -1;
            DateTime? hour = null;
            if (name.Success && folder.Success)
            {
                partition = int.Parse(name.Groups[1].Value, CultureInfo.InvariantCulture);
                first = long.Parse(name.Groups[2].Value, CultureInfo.InvariantCulture);
                last = long.Parse(name.Groups[3].Value, CultureInfo.InvariantCulture);
                hour = DateTime.ParseExact(folder.Groups[1].Value + " " + folder.Groups[2].Value, "yyyy-MM-dd HH", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
                named.Add((folder.Value, partition.Value, first, last, path));
            }
            else
            {
                Problem(problems, $"{Path.GetRelativePath(dataRoot, path)} is not named date=YYYY-MM-DD/hour=HH/<partition>-<first>-<last>.parquet");
            }

            await foreach (var (p, offset, time) in ReadAsync(path, cancellationToken))
            {
                rows++;
                Count(seen, p, offset);
                if (partition is null)
                {
                    misplaced++;
                }
                else if (p != partition || offset < first || offset > last || time < hour || time >= hour!.Value.AddHours(1))
                {
                    misplaced++;
                    Problem(problems, string.Create(CultureInfo.InvariantCulture, $"[{p}] @{offset} at {time:O} is in {Path.GetRelativePath(dataRoot, path)}"));
                }
            }
        }

        var superseded = 0;
        foreach (var group in named.GroupBy(n => (n.Folder, n.Partition)))
        {
            foreach (var f in group)
            {
                if (group.Any(o => o.Path != f.Path && o.First <= f.First && f.Last <= o.Last && (o.First, o.Last) != (f.First, f.Last)))
                {
                    superseded++;
                    Problem(problems, $"{Path.GetRelativePath(dataRoot, f.Path)} is superseded by a wider file of the same partition (its rows count)");
                }
            }
        }

        long missing = 0, duplicated = 0;
        foreach (var (p, offset) in validOffsets.Positions())
        {
            var count = seen.TryGetValue(p, out var counts) && offset < counts.Count ? counts[(int)offset] : 0;
            if (count == 0)
            {
                missing++;
                Problem(problems, string.Create(CultureInfo.InvariantCulture, $"[{p}] @{offset} acknowledged, in no file"));
            }
            else if (count > 1)
            {
                duplicated += count - 1;
                Problem(problems, string.Create(CultureInfo.InvariantCulture, $"[{p}] @{offset} in {count} rows"));
            }
        }

        foreach (var (p, counts) in seen)
        {
            for (var offset = 0; offset < counts.Count; offset++)
            {
                if (counts[offset] > 0 && !validOffsets.Contains(p, offset))
                {
                    duplicated += counts[offset];
                    Problem(problems, string.Create(CultureInfo.InvariantCulture, $"[{p}] @{offset} is not an acknowledged valid record"));
                }
            }
        }

        return new MasterComparison(rows, missing, duplicated, files.Count, superseded, misplaced, problems);
    }

    private static async IAsyncEnumerable<(int Partition, long Offset, DateTime Time)> ReadAsync(string path, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var reader = await ParquetReader.CreateAsync(path, cancellationToken: cancellationToken);
        DataField Field(string column) => reader.Schema.FindDataField(column) ?? throw new InvalidDataException($"{path} has no {column} column");
        var partitionField = Field("kafkaPartition");
        var offsetField = Field("kafkaOffset");
        var timeField = Field("timestamp");
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = checked((int)group.RowCount);
            var partitions = new int[n];
            var offsets = new long[n];
            var times = new DateTime[n];
            await group.ReadAsync<int>(partitionField, partitions, cancellationToken: cancellationToken);
            await group.ReadAsync<long>(offsetField, offsets, cancellationToken: cancellationToken);
            await group.ReadAsync<DateTime>(timeField, times, cancellationToken: cancellationToken);
            for (var i = 0; i < n; i++)
            {
                yield return (partitions[i], offsets[i], DateTime.SpecifyKind(times[i], DateTimeKind.Utc));
            }
        }
    }

    private static void Count(Dictionary<int, List<byte>> seen, int partition, long offset)
    {
        if (!seen.TryGetValue(partition, out var counts))
        {
            seen[partition] = counts = [];
        }

        var index = checked((int)offset);
        while (counts.Count <= index)
        {
            counts.Add(0);
        }

        counts[index] = (byte)Math.Min(255, counts[index] + 1);
    }

    private static void Problem(List<string> problems, string problem)
    {
        if (problems.Count < 20)
        {
            problems.Add(problem);
        }
    }

    [GeneratedRegex(@"^(\d+)-(\d+)-(\d+)\.parquet$")]
    private static partial Regex Name();

    [GeneratedRegex(@"^events/date=(\d{4}-\d\d-\d\d)/hour=(\d\d)$")]
    private static partial Regex Folder();
}
