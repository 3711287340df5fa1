using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Serving.Store;

/// <summary>How far the speed layer has flushed one Kafka partition, as recorded at its last durable flush.</summary>
/// <param name="ConsumerGroup">The speed layer's consumer group.</param>
/// <param name="Topic">The topic.</param>
/// <param name="Partition">The Kafka partition.</param>
/// <param name="NextOffset">Every record before this offset is durable in ClickHouse (the offset committed next).</param>
/// <param name="NewestEventTime">The newest event time (UTC) flushed from this partition so far, or null when none was.</param>
/// <param name="HighWatermark">The broker's high watermark of the partition at the flush, or null when unknown.</param>
/// <param name="FlushedAt">When the flush became durable (the writer's clock, UTC).</param>
/// <param name="Instance">Which process flushed (<c>host/pid</c>).</param>
public sealed record SpeedPartitionProgress(
    string ConsumerGroup, string Topic, int Partition, long NextOffset, DateTime? NewestEventTime, long? HighWatermark, DateTime FlushedAt, string Instance)
{
    /// <summary>Records of the partition not yet flushed at the flush (high watermark − next offset), or null when unknown.</summary>
    public long? KafkaLag => HighWatermark is { } high ? Math.Max(0, high - NextOffset) : null;
}

/// <summary>Speed-layer progress (this file of <see cref="ServingStore"/>).</summary>
public sealed partial class ServingStore
{
    private static readonly ClickHouseColumn[] SpeedProgressColumns =
    [
        new("consumerGroup", "String"), new("topic", "String"), new("kafkaPartition", "Int32"), new("nextOffset", "Int64"),
        new("newestEventMs", "Int64"), new("highWatermark", "Int64"), new("flushedAtMs", "Int64"), new("instance", "String"),
    ];

    /// <summary>Records the progress of the partitions of one durable flush (one row each).</summary>
    public async Task RecordSpeedProgressAsync(IReadOnlyCollection<SpeedPartitionProgress> partitions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        if (partitions.Count == 0)
        {
            return;
        }

        await ClickHouse.InsertAsync(SpeedProgressTable, SpeedProgressColumns, partitions.Select(p => new object?[]
        {
            p.ConsumerGroup, p.Topic, p.Partition, p.NextOffset, p.NewestEventTime is { } t ? ToUnixMs(t) : 0L, p.HighWatermark ?? -1L, ToUnixMs(p.FlushedAt), p.Instance,
        }), cancellationToken);
    }

    /// <summary>
    /// The last recorded progress of every partition of <paramref name="consumerGroup"/> (every group when null), by partition.
    /// <see cref="SpeedPartitionProgress.NewestEventTime"/> is the newest over every flush still recorded.
    /// </summary>
    public async Task<IReadOnlyList<SpeedPartitionProgress>> ReadSpeedProgressAsync(string? consumerGroup = null, CancellationToken cancellationToken = default)
    {
        var where = consumerGroup is null ? string.Empty : $" WHERE consumerGroup = {ViewSql.Literal(consumerGroup)}";
        var result = new List<SpeedPartitionProgress>();
        foreach (var f in await RowsAsync(
            $"SELECT consumerGroup, topic, kafkaPartition, argMax(nextOffset, flushedAtMs), max(newestEventMs), argMax(highWatermark, flushedAtMs), max(flushedAtMs), argMax(instance, flushedAtMs) "
            + $"FROM {SpeedProgressTable}{where} GROUP BY consumerGroup, topic, kafkaPartition ORDER BY consumerGroup, topic, kafkaPartition", cancellationToken))
        {
            var newest = long.Parse(f[4], CultureInfo.InvariantCulture);
            var high = long.Parse(f[5], CultureInfo.InvariantCulture);
            result.Add(new SpeedPartitionProgress(
                Unescape(f[0]), Unescape(f[1]), int.Parse(f[2], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture),
                newest > 0 ? FromUnixMs(newest) : null, high >= 0 ? high : null, FromUnixMs(long.Parse(f[6], CultureInfo.InvariantCulture)), Unescape(f[7])));
        }

        return result;
    }

    /// <summary>A TabSeparated field as text (backslash escapes undone).</summary>
    private static string Unescape(string field) => Schemas.Views.Measures.ClickHouseText.Unescape(field);
}
