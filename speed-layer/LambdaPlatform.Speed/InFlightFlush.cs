using System.Diagnostics;
using LambdaPlatform.Serving.Store;

namespace LambdaPlatform.Speed;

/// <summary>
/// One batch the consuming thread has handed to the sinks: its events, the next offset to commit per partition, its
/// spans, what was read for the operations page, and the background attempt that writes it. At most one exists per
/// consumer; the consuming thread reads on into the next batch while it is written, and commits its offsets only after
/// it is durable. While <see cref="Written"/> runs, the background task owns <see cref="Batch"/>; after it completed,
/// the consuming thread does.
/// </summary>
internal sealed class InFlightFlush
{
    /// <summary>The batch's valid events, in the order read.</summary>
    public required List<ConsumedEvent> Batch { get; init; }

    /// <summary>Per partition, the offset to commit once the batch is durable (the last read + 1).</summary>
    public required Dictionary<int, long> Positions { get; init; }

    /// <summary>The batch's spans.</summary>
    public required BatchTrace Trace { get; init; }

    /// <summary>The <c>speed.flush</c> span (null when not traced); ended when the batch is durable.</summary>
    public Activity? FlushSpan { get; init; }

    /// <summary>Records read and dead letters of the batch, for the operations page; null when none.</summary>
    public IngestRecord? Ingest { get; init; }

    /// <summary>When the batch was handed off (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long HandedOffAt { get; init; }

    /// <summary>
    /// The background attempt: completes with null when every sink wrote the batch and its progress is recorded, or
    /// with the exception that stopped it (the consuming thread then retries). Never faults.
    /// </summary>
    public Task<Exception?> Written { get; set; } = Task.FromResult<Exception?>(null);
}
