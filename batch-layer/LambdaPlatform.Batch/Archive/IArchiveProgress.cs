namespace LambdaPlatform.Batch.Archive;

/// <summary>
/// Where the archiver reports, for observers in other processes, how far each Kafka partition is archived (e.g. the
/// serving ClickHouse's pipeline state). Best effort: a failure is logged and never holds back a publication — the
/// master dataset's own record (<see cref="Master.MasterDataset.ArchivedThrough"/>) is what the batch layer trusts.
/// </summary>
public interface IArchiveProgress
{
    /// <summary>Every valid record of <paramref name="partition"/> through offset <paramref name="through"/> is in published files.</summary>
    Task RecordAsync(int partition, long through, CancellationToken cancellationToken = default);
}
