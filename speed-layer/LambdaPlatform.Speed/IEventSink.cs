using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Speed;

/// <summary>A valid event with the Kafka position it was read from.</summary>
/// <param name="Event">The decoded event.</param>
/// <param name="Partition">Kafka partition.</param>
/// <param name="Offset">Kafka offset within the partition.</param>
public readonly record struct ConsumedEvent(DecodedEvent Event, int Partition, long Offset);

/// <summary>
/// Where the speed layer writes a batch of valid events before it commits their offsets (raw events
/// table, real-time views). A write must be durable when the task completes, and idempotent: after a
/// crash the same batch (same partitions and offsets) may be written again and must not count twice.
/// </summary>
public interface IEventSink
{
    /// <summary>Short name for logs and metrics.</summary>
    string Name { get; }

    /// <summary>Creates whatever the sink needs (tables). Idempotent.</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Writes one batch durably.</summary>
    /// <exception cref="LambdaPlatform.ClickHouse.ClickHouseException">The write failed; the batch was not committed and will be retried.</exception>
    Task WriteAsync(IReadOnlyList<ConsumedEvent> batch, CancellationToken cancellationToken = default);
}
