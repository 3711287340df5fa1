using System.Runtime.CompilerServices;
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

    /// <summary>Events checked against one reading of the system clock (see <see cref="ReadClock"/>).</summary>
    private const int ClockReuseLimit = 1024;

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
    private readonly bool _payloadInline;
    private readonly int _metadataSource;
    private readonly int _metadataVersion;
    private readonly TypeEntry[] _types;
    private readonly long _minTimestampTicks;
    private readonly bool _systemClock;
    private long _latestTicks = long.MinValue;
    private DateTime _clockNow;
    private int _clockReuses;

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

        // The payload can be checked in the envelope's pass only when the envelope asks no more of it than "an object".
        _payloadInline = _registry.Envelope.Properties[_payload].Schema.IsOnlyObjectType;

        // metadata.source and metadata.version are picked out while metadata is validated (-1: read them in a second pass).
        var metadataProperties = _registry.Envelope.Properties[_metadata].Schema.PropertyArray;
        _metadataSource = Array.FindIndex(metadataProperties, p => p.Name == "source");
        _metadataVersion = Array.FindIndex(metadataProperties, p => p.Name == "version");

        _types = [.. _registry.EventTypes.Select(t => new TypeEntry(t))];
        _minTimestampTicks = _options.MinTimestamp.Ticks;
        _systemClock = ReferenceEquals(_options.Clock, TimeProvider.System);
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
            violation = TooLarge(message.Length);
            return false;
        }

        if (message.IsEmpty)
        {
            violation = new Violation("json", "empty message");
            return false;
        }

        var span = message.Span;
        if (!Ascii.IsValid(span) && !Utf8.IsValid(span))
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
            violation = Malformed(e);
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
        var bytes = message.Span;
        var reader = new Utf8JsonReader(bytes, _readerOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return new Violation("type", "an event must be a JSON object");
        }

        var envelope = _registry.Envelope;
        var properties = envelope.PropertyArray;
        Guid eventId = default;
        TypeEntry? type = null;
        string? unknownType = null;
        DateTimeOffset timestamp = default;
        string? userId = null;
        PayloadSchema? payloadCheckedWith = null;
        Violation? payloadViolation = null;
        var payloadStart = -1;
        var payloadEnd = -1;
        var metadataStart = -1;
        var metadataEnd = -1;
        var metadata = new MetadataValues(_metadataSource, _metadataVersion);
        ulong seen = 0;
        var next = 0;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var index = envelope.FindProperty(ref reader, next);
            if (index < 0)
            {
                return NotInEnvelope(ref reader, envelope);
            }

            var property = properties[index];
            if ((seen & (1UL << index)) != 0)
            {
                return Violations.Duplicate(property.Name);
            }

            seen |= 1UL << index;
            next = index + 1;
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            Violation? violation;
            var formats = default(FormatValues);
            if (index == _payload)
            {
                var schema = property.Schema;
                if (type is not null && reader.TokenType == JsonTokenType.StartObject && _payloadInline)
                {
                    // Usual field order (eventType before payload): check the payload in this same pass against the
                    // type's newest version, and re-check it below only if metadata.version names another one.
                    payloadCheckedWith = type.Newest;
                    var depth = reader.CurrentDepth;
                    payloadViolation = SchemaValidator.Validate(ref reader, payloadCheckedWith.Schema);
                    if (payloadViolation is not null)
                    {
                        // Reported only after the rest of the event, where the payload is checked otherwise: reach the
                        // payload's end so later envelope, JSON and depth errors still come first.
                        while ((reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != depth) && reader.Read())
                        {
                        }
                    }

                    violation = null;
                }
                else
                {
                    violation = SchemaValidator.Validate(ref reader, schema);
                }
            }
            else if (index == _metadata)
            {
                violation = SchemaValidator.Validate(ref reader, property.Schema, ref metadata);
            }
            else
            {
                violation = SchemaValidator.Validate(ref reader, property.Schema, ref formats);
            }

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
                if (formats.Parsed == StringFormat.Uuid)
                {
                    eventId = formats.Uuid;
                }
                else if (reader.TokenType != JsonTokenType.String || !reader.TryGetGuid(out eventId))
                {
                    // Only reachable when the envelope schema does not ask for format uuid.
                    return Violations.NotUuid().Under(property.Name);
                }
            }
            else if (index == _eventType)
            {
                type = FindType(ref reader);
                if (type is null)
                {
                    unknownType = reader.GetString();
                }
            }
            else if (index == _timestamp)
            {
                if (formats.Parsed == StringFormat.DateTime)
                {
                    timestamp = formats.DateTime;
                }
                else
                {
                    SchemaValidator.IsDateTime(ref reader, out timestamp);
                }
            }
            else if (index == _userId)
            {
                userId = reader.GetString();
            }
        }

        // Anything but whitespace after the closing brace makes the reader throw (caught as malformed JSON):
        // "{...}garbage" is not an event, however valid its first part.
        if (reader.Read())
        {
            return new Violation("json", $"unexpected {reader.TokenType} after the event object");
        }

        var missing = envelope.RequiredMask & ~seen;
        if (missing != 0)
        {
            var name = properties[System.Numerics.BitOperations.TrailingZeroCount(missing)].Name;
            return Violations.Required(name);
        }

        if (type is null)
        {
            return UnknownType(unknownType);
        }

        var utc = timestamp.UtcDateTime;
        if (utc.Ticks < _minTimestampTicks)
        {
            return TooEarly(utc);
        }

        if (utc.Ticks > _latestTicks || --_clockReuses < 0)
        {
            ReadClock();
            if (utc.Ticks > _latestTicks)
            {
                return TooLate(utc);
            }
        }

        string? source;
        PayloadSchema? payloadSchema;
        if (metadata.Complete)
        {
            source = Intern(bytes.Slice(metadata.SourceStart, metadata.SourceLength));
            payloadSchema = type.FindVersion(bytes.Slice(metadata.VersionStart, metadata.VersionLength));
            if (payloadSchema is null)
            {
                return UnknownVersion(type.Schemas, Encoding.UTF8.GetString(bytes.Slice(metadata.VersionStart, metadata.VersionLength))).Under("metadata");
            }
        }
        else
        {
            Violation? metaViolation;
            (source, payloadSchema, metaViolation) = ReadMetadata(bytes[metadataStart..metadataEnd], type.Schemas);
            if (metaViolation is not null)
            {
                return metaViolation.Under("metadata");
            }
        }

        var payload = message[payloadStart..payloadEnd];
        if (!ReferenceEquals(payloadCheckedWith, payloadSchema))
        {
            var payloadReader = new Utf8JsonReader(payload.Span, _readerOptions);
            payloadReader.Read();
            payloadViolation = SchemaValidator.Validate(ref payloadReader, payloadSchema!.Schema);
        }

        if (payloadViolation is not null)
        {
            return payloadViolation.Under("payload");
        }

        decoded = new DecodedEvent
        {
            EventId = eventId,
            EventType = type.Schemas.Name,
            Timestamp = utc,
            UserId = userId!,
            Source = source!,
            Version = payloadSchema!.Version,
            Payload = payload,
            Raw = message,
        };
        return null;
    }

    /// <summary>
    /// Reads the clock into the latest accepted event time. Reading it costs about as much as checking a
    /// field of the event, so with the system clock one reading serves up to <see cref="ClockReuseLimit"/>
    /// events: an event is accepted without a new reading only when it is not later than a bound that a
    /// non-decreasing clock can only have raised since, and is never rejected without a fresh reading.
    /// Injected clocks (tests, replays) are read for every event.
    /// </summary>
    private void ReadClock()
    {
        _clockNow = _options.Clock.GetUtcNow().UtcDateTime;
        var skew = _options.MaxFutureSkew.Ticks;
        _latestTicks = skew > DateTime.MaxValue.Ticks - _clockNow.Ticks ? DateTime.MaxValue.Ticks : _clockNow.Ticks + skew;
        _clockReuses = _systemClock ? ClockReuseLimit : 0;
    }

    private TypeEntry? FindType(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            var name = reader.ValueSpan;
            foreach (var entry in _types)
            {
                if (name.SequenceEqual(entry.Utf8Name))
                {
                    return entry;
                }
            }

            return null;
        }

        // Escaped (or, with a looser envelope schema, not a string): compare the way the reader does.
        foreach (var entry in _types)
        {
            if (reader.ValueTextEquals(entry.Utf8Name))
            {
                return entry;
            }
        }

        return null;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Violation Malformed(JsonException e) =>
        new("json", $"malformed JSON at byte {e.BytePositionInLine}: {FirstSentence(e.Message)}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Violation TooLarge(int length) => new("size", $"event is {length} bytes, more than the limit of {_options.MaxEventBytes}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Violation NotInEnvelope(ref Utf8JsonReader reader, CompiledSchema envelope)
    {
        var extra = reader.GetString() ?? string.Empty;
        return new Violation("additionalProperties", $"property '{extra}' is not part of the event envelope (allowed: {string.Join(", ", envelope.Properties.Select(p => p.Name))})").Under(extra);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Violation UnknownType(string? name) =>
        new Violation("eventType", $"unknown event type '{name}' (known: {string.Join(", ", _registry.EventTypes.Select(t => t.Name))})").Under("eventType");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Violation TooEarly(DateTime utc) =>
        new Violation("timestamp", $"event time {utc:O} is before the earliest accepted {_options.MinTimestamp:O}").Under("timestamp");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Violation TooLate(DateTime utc) =>
        new Violation("timestamp", $"event time {utc:O} is more than {_options.MaxFutureSkew} ahead of the clock ({_clockNow:O})").Under("timestamp");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Violation UnknownVersion(EventTypeSchemas type, string? version) =>
        new Violation("version", $"event type '{type.Name}' has no schema version '{version}' (known: {string.Join(", ", type.Versions.Select(v => v.Version))})").Under("version");

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
            return (null, null, UnknownVersion(type, unknownVersion));
        }

        return (source, schema, null);
    }

    private string Intern(ReadOnlySpan<byte> utf8)
    {
        foreach (var (known, text) in _sources)
        {
            if (utf8.SequenceEqual(known))
            {
                return text;
            }
        }

        var value = Encoding.UTF8.GetString(utf8);
        if (_sources.Count < 256)
        {
            _sources.Add((utf8.ToArray(), value));
        }

        return value;
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

    /// <summary>An event type with its names and versions as arrays, for the hot path.</summary>
    private sealed class TypeEntry
    {
        public TypeEntry(EventTypeSchemas schemas)
        {
            Schemas = schemas;
            Utf8Name = schemas.Utf8Name.ToArray();
            Versions = [.. schemas.Versions];
            Utf8Versions = [.. Versions.Select(v => v.Utf8Version.ToArray())];
            Newest = Versions[^1];
        }

        public EventTypeSchemas Schemas { get; }

        public byte[] Utf8Name { get; }

        public PayloadSchema[] Versions { get; }

        public byte[][] Utf8Versions { get; }

        public PayloadSchema Newest { get; }

        public PayloadSchema? FindVersion(ReadOnlySpan<byte> version)
        {
            var names = Utf8Versions;
            for (var i = 0; i < names.Length; i++)
            {
                if (version.SequenceEqual(names[i]))
                {
                    return Versions[i];
                }
            }

            return null;
        }
    }

    /// <summary>
    /// Where <c>metadata.source</c> and <c>metadata.version</c> sit in the message, picked out while metadata
    /// is validated. Escaped values (rare) are left to the second pass in <see cref="ReadMetadata"/>.
    /// </summary>
    private struct MetadataValues(int sourceIndex, int versionIndex) : IPropertyObserver
    {
        private bool _needsSecondPass = sourceIndex < 0 || versionIndex < 0;

        public int SourceStart { get; private set; } = -1;

        public int SourceLength { get; private set; }

        public int VersionStart { get; private set; } = -1;

        public int VersionLength { get; private set; }

        /// <summary>True when both values were found as plain strings (else use the second pass).</summary>
        public readonly bool Complete => !_needsSecondPass && SourceStart >= 0 && VersionStart >= 0;

        public void OnProperty(int index, ref Utf8JsonReader reader)
        {
            if (index != sourceIndex && index != versionIndex)
            {
                return;
            }

            if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped || reader.HasValueSequence)
            {
                _needsSecondPass = true;
                return;
            }

            var start = (int)reader.TokenStartIndex + 1; // after the opening quote
            if (index == sourceIndex)
            {
                SourceStart = start;
                SourceLength = reader.ValueSpan.Length;
            }
            else
            {
                VersionStart = start;
                VersionLength = reader.ValueSpan.Length;
            }
        }
    }
}
