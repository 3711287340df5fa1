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

    /// <summary>
    /// <c>metadata.version</c>: the version of the app that produced the event, free text (e.g. <c>2.5.1</c>); it does
    /// not select a schema (see <see cref="SchemaVersion"/>). Repeated values share one string instance per decoder.
    /// </summary>
    public required string Version { get; init; }

    /// <summary>
    /// The payload schema version the payload was accepted against (N of <c>&lt;eventType&gt;/v&lt;N&gt;.schema.json</c>,
    /// e.g. <c>2</c>): the one <c>metadata.schemaVersion</c> named, else the newest version the payload passes (see
    /// <see cref="EventDecoder"/>). Interned. Null for events not built by <see cref="EventDecoder"/>.
    /// </summary>
    public string? SchemaVersion { get; init; }

    /// <summary>The payload object as UTF-8 JSON, exactly as received.</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>The whole event as UTF-8 JSON, exactly as received.</summary>
    public required ReadOnlyMemory<byte> Raw { get; init; }
}
