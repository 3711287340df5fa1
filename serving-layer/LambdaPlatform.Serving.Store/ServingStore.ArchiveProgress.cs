using System.Globalization;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Serving.Store;

/// <summary>How far the archiver has archived one Kafka partition, as last reported.</summary>
/// <param name="Partition">The Kafka partition.</param>
/// <param name="ArchivedThrough">Every valid record through this offset is in published master-dataset files.</param>
/// <param name="RecordedAt">When it was reported (the archiver's clock, UTC).</param>
/// <param name="Instance">Which process reported it (<c>host/pid</c>).</param>
public sealed record ArchivePartitionProgress(int Partition, long ArchivedThrough, DateTime RecordedAt, string Instance);

/// <summary>Archiver progress (this file of <see cref="ServingStore"/>). Informational: the batch layer trusts the master dataset's own record.</summary>
public sealed partial class ServingStore
{
    private static readonly ClickHouseColumn[] ArchiveProgressColumns =
        [new("kafkaPartition", "Int32"), new("archivedThrough", "Int64"), new("recordedAtMs", "Int64"), new("instance", "String")];

    /// <summary>Records that <paramref name="partition"/> is archived through offset <paramref name="through"/>.</summary>
    public Task RecordArchiveProgressAsync(int partition, long through, DateTime recordedAt, string instance, CancellationToken cancellationToken = default) =>
        ClickHouse.InsertAsync(ArchiveProgressTable, ArchiveProgressColumns, [[partition, through, ToUnixMs(recordedAt), instance]], cancellationToken);

    /// <summary>The furthest recorded archive position of every partition, by partition.</summary>
    public async Task<IReadOnlyList<ArchivePartitionProgress>> ReadArchiveProgressAsync(CancellationToken cancellationToken = default)
    {
        var result = new List<ArchivePartitionProgress>();
        foreach (var f in await RowsAsync(
            $"SELECT kafkaPartition, max(archivedThrough), argMax(recordedAtMs, archivedThrough), argMax(instance, archivedThrough) FROM {ArchiveProgressTable} GROUP BY kafkaPartition ORDER BY kafkaPartition",
            cancellationToken))
        {
            result.Add(new ArchivePartitionProgress(int.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture),
                FromUnixMs(long.Parse(f[2], CultureInfo.InvariantCulture)), Unescape(f[3])));
        }

        return result;
    }
}
