using System.Diagnostics;

namespace LambdaPlatform.Speed;

/// <summary>
/// The speed layer's spans, on the activity source <see cref="SourceName"/> (registered by the host's composition helper):
/// per batch, <c>speed.consume</c> (reading and decoding the batch's records), <c>speed.flush</c> (writing it to every sink,
/// linked to the producers' traces by the records' <c>traceparent</c> headers) and <c>speed.commit</c> (committing its offsets).
/// </summary>
public static class SpeedTracing
{
    /// <summary>Name of the speed layer's activity source: <c>LambdaPlatform.Speed</c>.</summary>
    public const string SourceName = "LambdaPlatform.Speed";

    /// <summary>Most producer traces one flush span links to (the first ones of the batch): 128.</summary>
    public const int MaxLinks = 128;

    /// <summary>The activity source.</summary>
    public static ActivitySource Source { get; } = new(SourceName);
}

/// <summary>
/// The spans of one batch of the consumer, which reads and decodes records one at a time: <c>speed.batch</c> (a root: the
/// batch holds records of many producers) from the first record read to the commit, with <c>speed.consume</c> (reading and
/// decoding; the decoder runs per record in the same loop, so its counts are attributes of this span), <c>speed.flush</c>
/// (the sinks' writes, linked to up to <see cref="SpeedTracing.MaxLinks"/> producer spans from the records' <c>traceparent</c>
/// headers) and <c>speed.commit</c>. Nothing is allocated while no listener samples the source. One per batch; the consuming
/// thread reads and commits, the flush span may end on the thread that wrote the batch.
/// </summary>
internal sealed class BatchTrace
{
    private readonly List<ActivityLink> _links = [];
    private readonly HashSet<ActivitySpanId> _linked = [];
    private Activity? _batch;
    private Activity? _consume;
    private long _records;
    private long _deadLetters;

    /// <summary>A record was read: starts the batch's spans at the first one, and keeps the producer's context as a link.</summary>
    public void Read(Confluent.Kafka.ConsumeResult<byte[]?, byte[]?> record)
    {
        if (!SpeedTracing.Source.HasListeners())
        {
            return;
        }

        if (_batch is null)
        {
            Activity.Current = null; // a root
            _batch = SpeedTracing.Source.StartActivity("speed.batch", ActivityKind.Consumer);
            _consume = SpeedTracing.Source.StartActivity("speed.consume", ActivityKind.Consumer);
            _consume?.SetTag("messaging.system", "kafka");
            _consume?.SetTag("messaging.destination.name", record.Topic);
        }

        _records++;
        if (_links.Count < SpeedTracing.MaxLinks && Kafka.KafkaTracing.TryExtract(record.Message.Headers, out var producer) && _linked.Add(producer.SpanId))
        {
            _links.Add(new ActivityLink(producer));
        }
    }

    /// <summary>The record just read went to the dead-letter topic.</summary>
    public void DeadLettered() => _deadLetters++;

    /// <summary>The batch is read and decoded (<paramref name="valid"/> valid events): ends <c>speed.consume</c>.</summary>
    public void Consumed(int valid)
    {
        if (_consume is { } consume)
        {
            consume.SetTag("messaging.batch.message_count", _records);
            consume.SetTag("lambda.speed.valid", valid);
            consume.SetTag("lambda.speed.dead_letters", _deadLetters);
            consume.Dispose();
            _consume = null;
        }
    }

    /// <summary>Starts <c>speed.flush</c> under the batch, linked to the producers' spans; null when not traced.</summary>
    public Activity? StartFlush(int events)
    {
        if (_batch is null)
        {
            return null;
        }

        var flush = SpeedTracing.Source.StartActivity("speed.flush", ActivityKind.Internal, _batch.Context, links: _links);
        flush?.SetTag("messaging.batch.message_count", (long)events);
        flush?.SetTag("lambda.speed.producer_links", _links.Count);
        return flush;
    }

    /// <summary>Starts <c>speed.commit</c> under the batch (whatever span is current on the calling thread); null when not traced.</summary>
    public Activity? StartCommit(int partitions)
    {
        if (_batch is null)
        {
            return null;
        }

        var commit = SpeedTracing.Source.StartActivity("speed.commit", ActivityKind.Internal, _batch.Context);
        commit?.SetTag("lambda.speed.partitions", partitions);
        return commit;
    }

    /// <summary>The batch is committed (or abandoned): ends its spans.</summary>
    public void Done()
    {
        _consume?.Dispose();
        _batch?.Dispose();
        _consume = null;
        _batch = null;
    }
}
