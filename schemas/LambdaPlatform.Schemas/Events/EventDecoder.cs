using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Events;

/// <summary>Limits the decoder applies on top of the JSON Schemas.</summary>
public sealed record EventDecoderOptions
{
    /// <summary>Largest accepted event in bytes. Default 1 MiB.</summary>
    public int MaxEventBytes { get; init; } = 1 << 20;

    /// <summary>Deepest accepted JSON nesting. Default 32.</summary>
    public int MaxDepth { get; init; } = 32;

    /// <summary>Earliest accepted event time. Default 2000-01-01T00:00:00Z.</summary>
    public DateTime MinTimestamp { get; init; } = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>How far ahead of the clock an event time may be (producer clock skew). Default 1 hour.</summary>
    public TimeSpan MaxFutureSkew { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The clock for the future-skew check. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    public EventDecoderOptions Validate()
    {
        if (MaxEventBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxEventBytes), MaxEventBytes, "MaxEventBytes must be positive");
        }

        if (MaxDepth is < 2 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDepth), MaxDepth, "MaxDepth must be between 2 and 256");
        }

        if (MaxFutureSkew < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFutureSkew), MaxFutureSkew, "MaxFutureSkew must not be negative");
        }

        return this;
    }
}

/// <summary>
/// Decodes and validates events in one pass over their UTF-8 JSON: the envelope against
/// <c>envelope.schema.json</c>, the payload against its event type's schema for <c>metadata.version</c>,
/// plus size, UTF-8, depth and time-range limits. Every rejection is a <see cref="Violation"/> naming
/// the field path and the rule. Not thread-safe (it keeps a small cache of interned strings): use one
/// decoder per consuming thread.
/// </summary>
public sealed class EventDecoder
{
    private static readonly byte[] SourceName = "source"u8.ToArray();
    private static readonly byte[] VersionName = "version"u8.ToArray();

    private readonly EventSchemaRegistry _registry;
    private readonly EventDecoderOptions _options;
    private readonly JsonReaderOptions _readerOptions;
    private readonly List<(byte[] Utf8, string Text)> _sources = [];
    private readonly int _eventId;
    private readonly int _eventType;
    private readonly int _timestamp;
    private readonly int _userId;
    private readonly int _payload;
    private readonly int _metadata;

    /// <summary>Creates a decoder over the given schemas.</summary>
    public EventDecoder(EventSchemaRegistry registry, EventDecoderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _registry = registry;
        _options = (options ?? new EventDecoderOptions()).Validate();
        _readerOptions = new JsonReaderOptions { MaxDepth = _options.MaxDepth, CommentHandling = JsonCommentHandling.Disallow };
        _eventId = EnvelopeIndex("eventId");
        _eventType = EnvelopeIndex("eventType");
        _timestamp = EnvelopeIndex("timestamp");
        _userId = EnvelopeIndex("userId");
        _payload = EnvelopeIndex("payload");
        _metadata = EnvelopeIndex("metadata");
    }

    private int EnvelopeIndex(string name)
    {
        for (var i = 0; i < _registry.Envelope.Properties.Count; i++)
        {
            if (_registry.Envelope.Properties[i].Name == name)
            {
                return i;
            }
        }

        throw new SchemaLoadException(_registry.Directory, "#/properties", $"the envelope schema must declare '{name}'");
    }

    /// <summary>
    /// Decodes one event. Returns true with the event, or false with the first violation. Never throws
    /// for bad input.
    /// </summary>
    public bool TryDecode(ReadOnlyMemory<byte> message, out DecodedEvent? decoded, out Violation? violation)
    {
        decoded = null;
        if (message.Length > _options.MaxEventBytes)
        {
            violation = new Violation("size", $"event is {message.Length} bytes, more than the limit of {_options.MaxEventBytes}");
            return false;
        }

        if (message.IsEmpty)
        {
            violation = new Violation("json", "empty message");
            return false;
        }

        if (!Utf8.IsValid(message.Span))
        {
            violation = new Violation("utf8", "message is not valid UTF-8");
            return false;
        }

        try
        {
            violation = Decode(message, out decoded);
        }
        catch (JsonException e)
        {
            violation = new Violation("json", $"malformed JSON at byte {e.BytePositionInLine}: {FirstSentence(e.Message)}");
        }
        catch (InvalidOperationException e)
        {
            // Raised by the reader for strings with invalid escapes (e.g. lone surrogates).
            violation = new Violation("json", "invalid string content: " + FirstSentence(e.Message));
        }

        return violation is null;
    }

    private Violation? Decode(ReadOnlyMemory<byte> message, out DecodedEvent? decoded)
    {
        decoded = null;
        var reader = new Utf8JsonReader(message.Span, _readerOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return new Violation("type", "an event must be a JSON object");
        }

        var envelope = _registry.Envelope;
        Guid eventId = default;
        EventTypeSchemas? type = null;
        string? unknownType = null;
        DateTimeOffset timestamp = default;
        string? userId = null;
        var payloadStart = -1;
        var payloadEnd = -1;
        var metadataStart = -1;
        var metadataEnd = -1;
        ulong seen = 0;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var index = envelope.FindProperty(ref reader);
            if (index < 0)
            {
                var extra = reader.GetString() ?? string.Empty;
                return new Violation("additionalProperties", $"property '{extra}' is not part of the event envelope (allowed: {string.Join(", ", envelope.Properties.Select(p => p.Name))})").Under(extra);
            }

            var property = envelope.Properties[index];
            if ((seen & (1UL << index)) != 0)
            {
                return new Violation("duplicate", $"property '{property.Name}' appears more than once").Under(property.Name);
            }

            seen |= 1UL << index;
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            var violation = SchemaValidator.Validate(ref reader, property.Schema);
            if (violation is not null)
            {
                return violation.Under(property.Name);
            }

            if (index == _payload)
            {
                payloadStart = start;
                payloadEnd = (int)reader.BytesConsumed;
            }
            else if (index == _metadata)
            {
                metadataStart = start;
                metadataEnd = (int)reader.BytesConsumed;
            }
            else if (index == _eventId)
            {
                eventId = reader.GetGuid();
            }
            else if (index == _eventType)
            {
                type = _registry.Find(ref reader);
                if (type is null)
                {
                    unknownType = reader.GetString();
                }
            }
            else if (index == _timestamp)
            {
                SchemaValidator.IsDateTime(ref reader, out timestamp);
            }
            else if (index == _userId)
            {
                userId = reader.GetString();
            }
        }

        var missing = envelope.RequiredMask & ~seen;
        if (missing != 0)
        {
            var name = envelope.Properties[System.Numerics.BitOperations.TrailingZeroCount(missing)].Name;
            return new Violation("required", $"required property '{name}' is missing");
        }

        if (type is null)
        {
            return new Violation("eventType", $"unknown event type '{unknownType}' (known: {string.Join(", ", _registry.EventTypes.Select(t => t.Name))})").Under("eventType");
        }

        var utc = timestamp.UtcDateTime;
        if (utc < _options.MinTimestamp)
        {
            return new Violation("timestamp", $"event time {utc:O} is before the earliest accepted {_options.MinTimestamp:O}").Under("timestamp");
        }

        var latest = _options.Clock.GetUtcNow().UtcDateTime + _options.MaxFutureSkew;
        if (utc > latest)
        {
            return new Violation("timestamp", $"event time {utc:O} is more than {_options.MaxFutureSkew} ahead of the clock ({latest - _options.MaxFutureSkew:O})").Under("timestamp");
        }

        var (source, payloadSchema, metaViolation) = ReadMetadata(message.Span[metadataStart..metadataEnd], type);
        if (metaViolation is not null)
        {
            return metaViolation.Under("metadata");
        }

        var payload = message[payloadStart..payloadEnd];
        var payloadReader = new Utf8JsonReader(payload.Span, _readerOptions);
        payloadReader.Read();
        var payloadViolation = SchemaValidator.Validate(ref payloadReader, payloadSchema!.Schema);
        if (payloadViolation is not null)
        {
            return payloadViolation.Under("payload");
        }

        decoded = new DecodedEvent
        {
            EventId = eventId,
            EventType = type.Name,
            Timestamp = utc,
            UserId = userId!,
            Source = source!,
            Version = payloadSchema.Version,
            Payload = payload,
            Raw = message,
        };
        return null;
    }

    private (string? Source, PayloadSchema? Schema, Violation? Violation) ReadMetadata(ReadOnlySpan<byte> metadata, EventTypeSchemas type)
    {
        // Already validated against the envelope schema: an object with string source and version.
        var reader = new Utf8JsonReader(metadata, _readerOptions);
        reader.Read();
        string? source = null;
        PayloadSchema? schema = null;
        string? unknownVersion = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isSource = reader.ValueTextEquals(SourceName);
            var isVersion = !isSource && reader.ValueTextEquals(VersionName);
            reader.Read();
            if (isSource)
            {
                source = Intern(ref reader);
            }
            else if (isVersion)
            {
                schema = type.FindVersion(ref reader);
                unknownVersion = schema is null ? reader.GetString() : null;
            }
            else
            {
                reader.Skip();
            }
        }

        if (schema is null)
        {
            return (null, null, new Violation("version", $"event type '{type.Name}' has no schema version '{unknownVersion}' (known: {string.Join(", ", type.Versions.Select(v => v.Version))})").Under("version"));
        }

        return (source, schema, null);
    }

    private string Intern(ref Utf8JsonReader reader)
    {
        foreach (var (utf8, text) in _sources)
        {
            if (reader.ValueTextEquals(utf8))
            {
                return text;
            }
        }

        var value = reader.GetString()!;
        if (_sources.Count < 256)
        {
            _sources.Add((Encoding.UTF8.GetBytes(value), value));
        }

        return value;
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". ", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
