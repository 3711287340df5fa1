using LambdaPlatform.Batch.Master;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Batch.Archive;

/// <summary>
/// The archiver's <see cref="IArchiveFiles"/> on the master dataset: each hour's rows are written to a temporary file
/// in the hour's folder, fsynced, renamed to <c>&lt;partition&gt;-&lt;first&gt;-&lt;last&gt;.parquet</c> (never over an existing
/// file) and the folder fsynced.
/// </summary>
/// <param name="dataset">The master dataset.</param>
/// <param name="compression">Codec of the files.</param>
/// <param name="rows">The rows buffered for a (partition, hour).</param>
/// <param name="logger">Logger.</param>
internal sealed class MasterArchiveFiles(MasterDataset dataset, MasterCompression compression, Func<int, HourKey, MasterEventBuffer> rows, ILogger logger) : IArchiveFiles
{
    /// <inheritdoc />
    public async Task<(MasterFile File, long Bytes)> WriteAsync(int partition, HourKey hour, OffsetRange range, CancellationToken cancellationToken)
    {
        var folder = dataset.HourPath(hour);
        Durable.CreateDirectory(folder);
        var name = MasterFile.FileName(partition, range);
        var path = Path.Combine(folder, name);
        var temp = Path.Combine(folder, "." + name + "." + Guid.NewGuid().ToString("N") + ".tmp");
        long size;
        try
        {
            size = await MasterParquet.WriteFileAsync(rows(partition, hour), temp, compression, cancellationToken);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        if (!Durable.TryPublish(temp, path))
        {
            // Same partition and range: the same records, already published (e.g. an earlier attempt whose folder
            // fsync failed). The published file stays; files never change.
            TryDelete(temp);
            size = new FileInfo(path).Length;
            logger.LogWarning("{Path} was already published; kept it", path);
        }

        return (new MasterFile(path, hour, partition, range), size);
    }

    /// <inheritdoc />
    public Task MarkChangedAsync(IReadOnlyList<DateOnly> days, CancellationToken cancellationToken) => dataset.MarkChangedAsync(days, cancellationToken);

    /// <inheritdoc />
    public Task RecordArchivedAsync(int partition, long through, CancellationToken cancellationToken) => dataset.RecordArchivedAsync(partition, through, cancellationToken);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A stale temporary file is harmless (readers ignore it) and the compactor removes it later.
        }
    }
}
