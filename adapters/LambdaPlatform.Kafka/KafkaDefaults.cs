using Confluent.Kafka;

namespace LambdaPlatform.Kafka;

/// <summary>
/// Kafka client settings every part of the platform starts from. They work against a real cluster and
/// against the dev broker (librdkafka's mock cluster) alike.
/// </summary>
/// <remarks>Each call returns a new config object; callers may change it. Thread-safe.</remarks>
public static class KafkaDefaults
{
    /// <summary>
    /// Producer settings: idempotent with <c>acks=all</c> (retries cannot duplicate or reorder a partition),
    /// batched for throughput (<c>linger.ms=5</c>, up to 10,000 messages or 1 MB per batch), LZ4-compressed,
    /// keys partitioned with murmur2 like the Java client so every producer puts a user id on the same partition.
    /// </summary>
    /// <param name="bootstrapServers">Comma-separated <c>host:port</c> list.</param>
    /// <returns>A new config.</returns>
    /// <remarks>
    /// Compression also stretches the dev broker's 5 MiB-per-partition log: it counts stored (compressed) bytes.
    /// Delivery keeps retrying for <c>message.timeout.ms</c> (librdkafka default 300 s), e.g. while a broker is down.
    /// </remarks>
    public static ProducerConfig ProducerConfig(string bootstrapServers)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bootstrapServers);
        return new ProducerConfig
        {
            BootstrapServers = bootstrapServers,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            BatchNumMessages = 10_000,
            BatchSize = 1_000_000,
            CompressionType = CompressionType.Lz4,
            Partitioner = Partitioner.Murmur2Random,
            SocketNagleDisable = true,
        };
    }

    /// <summary>
    /// Consumer settings for at-least-once processing: no auto-commit and no automatic offset store (store and
    /// commit only after the output is durable), start from the earliest offset when the group has none.
    /// </summary>
    /// <param name="bootstrapServers">Comma-separated <c>host:port</c> list.</param>
    /// <param name="groupId">Consumer group id.</param>
    /// <param name="groupProtocol">
    /// <see cref="GroupProtocol.Consumer"/> (default): the KIP-848 protocol. The broker assigns partitions
    /// incrementally and never rejects commits of still-owned partitions while the group changes; session timeout
    /// and heartbeat interval are broker settings (see the dev broker's <c>ConsumerGroupSessionTimeout</c>).
    /// Needs Apache Kafka 4.0+ (or a platform with KIP-848). With the dev broker a joining member got partitions
    /// in 0.1–0.5 s, with no failed commit and no re-delivery.
    /// <see cref="GroupProtocol.Classic"/>: for older clusters; uses <c>session.timeout.ms=6000</c> (the
    /// broker minimum), 1 s heartbeats and cooperative-sticky assignment. The dev broker then completes each
    /// rebalance only after about the session timeout (about 5 s per rebalance, two for a cooperative one) and
    /// answers <c>REBALANCE_IN_PROGRESS</c> to every commit meanwhile, so the caller must tolerate failed commits
    /// and re-delivery.
    /// </param>
    /// <returns>A new config.</returns>
    public static ConsumerConfig ConsumerConfig(string bootstrapServers, string groupId, GroupProtocol groupProtocol = GroupProtocol.Consumer)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bootstrapServers);
        ArgumentException.ThrowIfNullOrWhiteSpace(groupId);
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrapServers,
            GroupId = groupId,
            GroupProtocol = groupProtocol,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = false,

            // The speed layer's budget is one second end to end; the default (500 ms) would spend half of it waiting.
            FetchWaitMaxMs = 100,

            // When the consumer's queue is full (the application paused for a flush or a GC), librdkafka postpones the
            // partition's next fetch by this much (default 1,000 ms): the queue then drains and the application waits idle.
            FetchQueueBackoffMs = 10,
            SocketNagleDisable = true,
        };

        if (groupProtocol == GroupProtocol.Classic)
        {
            // librdkafka rejects these with group.protocol=consumer, where the broker owns them.
            config.SessionTimeoutMs = 6_000;
            config.HeartbeatIntervalMs = 1_000;
            config.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
        }

        return config;
    }
}
