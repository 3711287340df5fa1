using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Batch.Master;

/// <summary>Settings of the <see cref="MasterCompactor"/>.</summary>
public sealed record MasterCompactorOptions
{
    /// <summary>Largest total size of the inputs merged into one output file, in bytes. Default 256 MiB.</summary>
    public long MaxOutputBytes { get; init; } = 256L << 20;

    /// <summary>Codec of the merged files. Default <see cref="MasterCompression.Zstd"/>.</summary>
    public MasterCompression Compression { get; init; } = MasterCompression.Zstd;

    /// <summary>
    /// Age after which a temporary file (<c>.*.tmp</c>) in an hour folder counts as left behind by a crash and is
    /// deleted. Default 1 hour (a writer finishes a file in seconds).
    /// </summary>
    public TimeSpan StaleTempAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Test-only fault point: runs after a merged file is renamed into place, before its inputs are deleted.</summary>
    internal Action<MasterFile>? AfterPublish { get; init; }

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    /// <returns>This instance.</returns>
    public MasterCompactorOptions Validate()
    {
        if (MaxOutputBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxOutputBytes), MaxOutputBytes, "MaxOutputBytes must be positive");
        }

        if (!Enum.IsDefined(Compression))
        {
            throw new ArgumentOutOfRangeException(nameof(Compression), Compression, "Compression must be Zstd or Snappy");
        }

        if (StaleTempAge <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(StaleTempAge), StaleTempAge, "StaleTempAge must be positive");
        }

        return this;
    }
}

/// <summary>What one compaction of an hour folder did.</summary>
/// <param name="Hour">The hour folder.</param>
/// <param name="Outputs">Merged files published.</param>
/// <param name="InputsDeleted">Input files deleted after their merged file was in place.</param>
/// <param name="SupersededDeleted">Left-overs of an earlier interrupted compaction deleted (their rows are in a covering file).</param>
/// <param name="TempFilesDeleted">Stale temporary files deleted.</param>
/// <param name="Rows">Rows rewritten.</param>
public sealed record CompactionResult(HourKey Hour, IReadOnlyList<MasterFile> Outputs, int InputsDeleted, int SupersededDeleted, int TempFilesDeleted, long Rows);

/// <summary>
/// Merges the small files of an hour folder, per partition, into larger ones, without changing the rows.
/// </summary>
/// <remarks>
/// <para><b>What is merged.</b> Files of one partition whose ranges lie in one contiguous proven range of that
/// partition, except the files of the partition's latest publication (the archiver may still be completing it after
/// a crash). The output is named with the union range, <c>&lt;partition&gt;-&lt;min first&gt;-&lt;max last&gt;.parquet</c>, so
/// <see cref="MasterDataset.ProvenOffsets"/> is unchanged. That is sound because every earlier publication of the
/// partition is complete: an offset in the union that is in none of the inputs is invalid or belongs to another hour.</para>
/// <para><b>Order of operations.</b> (1) write the merged rows to a temporary file and fsync it; (2) rename it into
/// place and fsync the folder; (3) mark the day changed; (4) delete the inputs and fsync the folder. A reader never
/// misses a row. Between (2) and (4), a raw <c>*.parquet</c> glob sees the inputs' rows twice (the batch layer dedupes by
/// event id, and the day is marked changed in (3) so a batch run that overlapped is redone);
/// <see cref="MasterDataset.ListFiles(DateOnly)"/> hides the inputs as soon as (2) is done, since their ranges are inside
/// the output's. A crash between (2) and (4) is resolved by the next run: it first deletes every file whose range is
/// covered by another file of the same partition in the folder. A crash before (2) leaves a temporary file, which
/// readers ignore and a run deletes once older than <see cref="MasterCompactorOptions.StaleTempAge"/>.</para>
/// <para>Runs concurrently with archivers. Run one compactor per folder at a time. Not thread-safe per instance.</para>
/// </remarks>
public sealed class MasterCompactor
{
    private readonly MasterDataset _dataset;
    private readonly MasterCompactorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;

    /// <summary>Creates a compactor for <paramref name="dataset"/>.</summary>
    /// <exception cref="ArgumentException">A setting of <paramref name="options"/> is invalid; the message names it.</exception>
    public MasterCompactor(MasterDataset dataset, MasterCompactorOptions? options = null, ILogger<MasterCompactor>? logger = null, TimeProvider? clock = null)
    {
        _dataset = dataset ?? throw new ArgumentNullException(nameof(dataset));
        _options = (options ?? new MasterCompactorOptions()).Validate();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>Compacts every hour folder of <paramref name="day"/>.</summary>
    /// <returns>One result per hour folder.</returns>
    public async Task<IReadOnlyList<CompactionResult>> CompactDayAsync(DateOnly day, CancellationToken cancellationToken = default)
    {
        var results = new List<CompactionResult>();
        for (var hour = 0; hour < 24; hour++)
        {
            var key = new HourKey(day, hour);
            if (Directory.Exists(_dataset.HourPath(key)))
            {
                results.Add(await CompactHourAsync(key, cancellationToken));
            }
        }

        return results;
    }

    /// <summary>Compacts one hour folder (see the remarks of <see cref="MasterCompactor"/> for the order of operations).</summary>
    /// <exception cref="IOException">A file could not be read, written or deleted; the folder is left consistent.</exception>
    public async Task<CompactionResult> CompactHourAsync(HourKey hour, CancellationToken cancellationToken = default)
    {
        var folder = _dataset.HourPath(hour);
        var tempDeleted = DeleteStaleTemps(folder);

        // Left-overs of an interrupted compaction: every row of theirs is in the covering file.
        var all = _dataset.ListHour(hour, includeSuperseded: true);
        var current = MasterDataset.WithoutSuperseded([.. all]);
        var superseded = all.Except(current).ToList();
        foreach (var file in superseded)
        {
            _logger.LogInformation("deleting {Path}: its range is inside another file's", file.Path);
            Durable.Delete(file.Path);
        }

        if (superseded.Count > 0)
        {
            await _dataset.MarkChangedAsync([hour.Date], cancellationToken);
        }

        var coverage = _dataset.ProvenOffsets();
        var outputs = new List<MasterFile>();
        var inputsDeleted = 0;
        long rows = 0;
        foreach (var partition in current.GroupBy(f => f.Partition))
        {
            if (!coverage.TryGetValue(partition.Key, out var proven))
            {
                continue; // Its files vanished meanwhile (another compactor): nothing to do.
            }

            foreach (var run in Runs(partition.Where(f => f.Offsets.Last < proven.MaxLastOffset).OrderBy(f => f.Offsets.First).ToList(), proven))
            {
                var (output, count) = await MergeAsync(hour, partition.Key, run, cancellationToken);
                outputs.Add(output);
                rows += count;
                inputsDeleted += run.Count;
            }
        }

        return new CompactionResult(hour, outputs, inputsDeleted, superseded.Count, tempDeleted, rows);
    }

    private IEnumerable<List<MasterFile>> Runs(List<MasterFile> files, PartitionCoverage proven)
    {
        var run = new List<MasterFile>();
        long bytes = 0;
        foreach (var file in files)
        {
            var size = new FileInfo(file.Path).Length;
            if (run.Count > 0
                && (!proven.Covers(new OffsetRange(run[0].Offsets.First, file.Offsets.Last)) || bytes + size > _options.MaxOutputBytes))
            {
                if (run.Count > 1)
                {
                    yield return run;
                }

                run = [];
                bytes = 0;
            }

            run.Add(file);
            bytes += size;
        }

        if (run.Count > 1)
        {
            yield return run;
        }
    }

    private async Task<(MasterFile Output, int Rows)> MergeAsync(HourKey hour, int partition, List<MasterFile> inputs, CancellationToken cancellationToken)
    {
        var buffer = new MasterEventBuffer(4096);
        foreach (var input in inputs)
        {
            await MasterParquet.ReadAsync(input.Path, buffer, cancellationToken);
        }

        var range = new OffsetRange(inputs[0].Offsets.First, inputs.Max(f => f.Offsets.Last));
        var output = new MasterFile(_dataset.FilePath(hour, partition, range), hour, partition, range);
        var temp = Path.Combine(Path.GetDirectoryName(output.Path)!, "." + Path.GetFileName(output.Path) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            await MasterParquet.WriteFileAsync(buffer, temp, _options.Compression, cancellationToken);
            if (!Durable.TryPublish(temp, output.Path))
            {
                File.Delete(temp); // Published by an earlier run that stopped before deleting its inputs.
            }
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        _options.AfterPublish?.Invoke(output);
        await _dataset.MarkChangedAsync([hour.Date], cancellationToken);
        foreach (var input in inputs)
        {
            Durable.Delete(input.Path);
        }

        _logger.LogInformation("compacted {Count} files of {Hour} partition {Partition} into {Output} ({Rows} rows)",
            inputs.Count, hour, partition, Path.GetFileName(output.Path), buffer.Count);
        return (output, buffer.Count);
    }

    private int DeleteStaleTemps(string folder)
    {
        if (!Directory.Exists(folder))
        {
            return 0;
        }

        var deleted = 0;
        var now = _clock.GetUtcNow().UtcDateTime;
        foreach (var path in Directory.EnumerateFiles(folder, ".*.tmp"))
        {
            if (now - File.GetLastWriteTimeUtc(path) >= _options.StaleTempAge)
            {
                TryDelete(path);
                deleted++;
            }
        }

        return deleted;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A temporary file is harmless; a later run retries.
        }
    }
}
