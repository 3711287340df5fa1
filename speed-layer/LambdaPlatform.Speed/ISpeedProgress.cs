namespace LambdaPlatform.Speed;

/// <summary>How far one Kafka partition is flushed, after a durable flush that read records of it.</summary>
/// <param name="Topic">The topic.</param>
/// <param name="Partition">The Kafka partition.</param>
/// <param name="NextOffset">Every record before this offset is durable downstream (the offset committed next).</param>
/// <param name="NewestEventTime">The newest event time (UTC) of the valid events of this partition in the flush, or null when it had none.</param>
/// <param name="HighWatermark">The broker's high watermark of the partition as of the last fetch, or null when unknown.</param>
/// <param name="FlushedAt">When the flush became durable (UTC).</param>
public sealed record PartitionFlush(string Topic, int Partition, long NextOffset, DateTime? NewestEventTime, long? HighWatermark, DateTime FlushedAt);

/// <summary>
/// Where the speed layer reports, for observers in other processes, how far each partition is flushed (e.g. the serving
/// ClickHouse's pipeline state, from which every API instance computes its freshness). Best effort: called after the sinks'
/// writes are durable and before the offsets are committed; a failure is logged and never holds back the commit.
/// </summary>
public interface ISpeedProgress
{
    /// <summary>Records one durable flush: one entry per partition it read records of.</summary>
    Task RecordAsync(string consumerGroup, IReadOnlyList<PartitionFlush> partitions, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records what one durable flush read: records, and the dead letters among them by rule and path with samples
    /// (<see cref="IngestTally"/>). Default: nothing.
    /// </summary>
    Task RecordIngestAsync(Serving.Store.IngestRecord flush, CancellationToken cancellationToken = default) => Task.CompletedTask;
}
