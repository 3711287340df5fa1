namespace LambdaPlatform.Schemas.Events;

/// <summary>
/// A valid event, decoded from its JSON envelope. <see cref="Payload"/> and <see cref="Raw"/> point into
/// the message buffer they were decoded from: keep that buffer alive (and unchanged) while they are used.
/// </summary>
public sealed class DecodedEvent
{
    /// <summary>Unique id of the event; duplicates share it.</summary>
    public required Guid EventId { get; init; }

    /// <summary>Event type (interned: the same string instance per type).</summary>
    public required string EventType { get; init; }

    /// <summary>Event time in UTC.</summary>
    public required DateTime Timestamp { get; init; }

    /// <summary>The user the event is about (the Kafka key).</summary>
    public required string UserId { get; init; }

    /// <summary><c>metadata.source</c>: the producing system.</summary>
    public required string Source { get; init; }

    /// <summary><c>metadata.version</c>: the payload schema version (interned).</summary>
    public required string Version { get; init; }

    /// <summary>The payload object as UTF-8 JSON, exactly as received.</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>The whole event as UTF-8 JSON, exactly as received.</summary>
    public required ReadOnlyMemory<byte> Raw { get; init; }
}
