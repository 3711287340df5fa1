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
/// <c>envelope.schema.json</c>, the payload against a schema version of its event type, plus size, UTF-8,
/// depth and time-range limits. Every rejection is a <see cref="Violation"/> naming the field path and the
/// rule. Not thread-safe (it keeps small caches of interned strings): use one decoder per consuming thread.
/// </summary>
/// <remarks>
/// <para>The payload schema version (<c>&lt;eventType&gt;/v&lt;N&gt;.schema.json</c>) is chosen by
/// <c>eventType</c>; <c>metadata.version</c> is the producing app's version, free text, and chooses nothing:</para>
/// <list type="number">
/// <item>When <c>metadata.schemaVersion</c> is present it names N: the payload must pass vN, and nothing else is
/// tried. An N the event type does not have is refused with rule <c>schemaVersion</c> at
/// <c>$.metadata.schemaVersion</c>, before any payload violation.</item>
/// <item>Otherwise the payload is checked against the newest version (highest N). If it fails, the older versions
/// are tried from newest to oldest and the first one it passes is used. If it passes none, the event is refused
/// with the newest version's violation.</item>
/// </list>
/// <para>The accepted version is <see cref="DecodedEvent.SchemaVersion"/>. The verdict of rule 2 is the same as
/// "the payload passes at least one version", so events of every shipped version keep decoding when a newer
/// version is added. Events in the newest shape cost one pass, usually the same pass as the envelope's; only
/// events in an older shape pay for the extra checks.</para>
/// </remarks>
public sealed class EventDecoder
{
    private static readonly byte[] SourceName = "source"u8.ToArray();
    private static readonly byte[] VersionName = "version"u8.ToArray();
    private static readonly byte[] SchemaVersionName = "schemaVersion"u8.ToArray();

    /// <summary>Events checked against one reading of the system clock (see <see cref="ReadClock"/>).</summary>
    private const int ClockReuseLimit = 1024;

    private readonly EventSchemaRegistry _registry;
    private readonly EventDecoderOptions _options;
    private readonly JsonReaderOptions _readerOptions;
    private readonly StringCache _sources = new(256);
    private readonly StringCache _appVersions = new(64);
    private readonly int _eventId;
    private readonly int _eventType;
    private readonly int _timestamp;
    private readonly int _userId;
    private readonly int _payload;
    private readonly int _metadata;
    private readonly bool _payloadInline;
    private readonly int _metadataSource;
    private readonly int _metadataVersion;
    private readonly int _metadataSchemaVersion;
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

        // metadata.source, metadata.version and metadata.schemaVersion are picked out while metadata is validated
        // (source or version -1: read them in a second pass). schemaVersion is honoured only when the envelope
        // declares it: an older envelope file without it never pins a version.
        var metadataProperties = _registry.Envelope.Properties[_metadata].Schema.PropertyArray;
        _metadataSource = Array.FindIndex(metadataProperties, p => p.Name == "source");
        _metadataVersion = Array.FindIndex(metadataProperties, p => p.Name == "version");
        _metadataSchemaVersion = Array.FindIndex(metadataProperties, p => p.Name == "schemaVersion");

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
        var metadata = new MetadataValues(_metadataSource, _metadataVersion, _metadataSchemaVersion);
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
                    // type's newest version; below, it is re-checked only when metadata.schemaVersion names another
                    // version, or when it failed and an older version may accept it.
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

        string source;
        string appVersion;
        PayloadSchema? named = null;
        if (metadata.Complete)
        {
            source = _sources.Get(bytes.Slice(metadata.SourceStart, metadata.SourceLength));
            appVersion = _appVersions.Get(bytes.Slice(metadata.VersionStart, metadata.VersionLength));
            if (metadata.SchemaVersionStart >= 0)
            {
                var text = bytes.Slice(metadata.SchemaVersionStart, metadata.SchemaVersionLength);
                named = type.FindVersion(text);
                if (named is null)
                {
                    return UnknownSchemaVersion(type.Schemas, Encoding.UTF8.GetString(text)).Under("metadata");
                }
            }
        }
        else
        {
            Violation? metaViolation;
            (source, appVersion, named, metaViolation) = ReadMetadata(bytes[metadataStart..metadataEnd], type.Schemas);
            if (metaViolation is not null)
            {
                return metaViolation.Under("metadata");
            }
        }

        var payload = message[payloadStart..payloadEnd];
        var payloadSchema = named ?? type.Newest;
        if (!ReferenceEquals(payloadCheckedWith, payloadSchema))
        {
            payloadViolation = Check(payload.Span, payloadSchema);
        }

        if (payloadViolation is not null)
        {
            // Named: that version only. Else an older version may still accept it (an older producer's shape).
            payloadSchema = named is null ? OlderVersionAccepting(type, payload.Span) : null;
            if (payloadSchema is null)
            {
                return payloadViolation.Under("payload");
            }
        }

        decoded = new DecodedEvent
        {
            EventId = eventId,
            EventType = type.Schemas.Name,
            Timestamp = utc,
            UserId = userId!,
            Source = source,
            Version = appVersion,
            SchemaVersion = payloadSchema.Version,
            Payload = payload,
            Raw = message,
        };
        return null;
    }

    private Violation? Check(ReadOnlySpan<byte> payload, PayloadSchema schema)
    {
        var reader = new Utf8JsonReader(payload, _readerOptions);
        reader.Read();
        return SchemaValidator.Validate(ref reader, schema.Schema);
    }

    /// <summary>The newest version older than the newest that accepts <paramref name="payload"/>, or null.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private PayloadSchema? OlderVersionAccepting(TypeEntry type, ReadOnlySpan<byte> payload)
    {
        var versions = type.Versions;
        for (var i = versions.Length - 2; i >= 0; i--)
        {
            if (Check(payload, versions[i]) is null)
            {
                return versions[i];
            }
        }

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
    private static Violation UnknownSchemaVersion(EventTypeSchemas type, string? version) =>
        new Violation("schemaVersion", $"event type '{type.Name}' has no schema version '{version}' (known: {string.Join(", ", type.Versions.Select(v => v.Version))}; metadata.schemaVersion names v<N>.schema.json, metadata.version is the app's version)").Under("schemaVersion");

    private (string Source, string AppVersion, PayloadSchema? Named, Violation? Violation) ReadMetadata(ReadOnlySpan<byte> metadata, EventTypeSchemas type)
    {
        // Already validated against the envelope schema: an object whose declared properties have their declared types.
        var reader = new Utf8JsonReader(metadata, _readerOptions);
        reader.Read();
        string? source = null;
        string? appVersion = null;
        PayloadSchema? named = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isSource = reader.ValueTextEquals(SourceName);
            var isVersion = !isSource && reader.ValueTextEquals(VersionName);
            var isSchemaVersion = !isSource && !isVersion && _metadataSchemaVersion >= 0 && reader.ValueTextEquals(SchemaVersionName);
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                // Only with an envelope file that does not declare these as strings.
                reader.Skip();
            }
            else if (isSource)
            {
                source = _sources.Get(ref reader);
            }
            else if (isVersion)
            {
                appVersion = _appVersions.Get(ref reader);
            }
            else if (isSchemaVersion)
            {
                named = type.FindVersion(ref reader);
                if (named is null)
                {
                    return (string.Empty, string.Empty, null, UnknownSchemaVersion(type, reader.GetString()));
                }
            }
        }

        // Both are required by the shipped envelope; an envelope file that makes them optional gets "".
        return (source ?? string.Empty, appVersion ?? string.Empty, named, null);
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
            Versions = [.. schemas.Versions]; // oldest first
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
    /// Where <c>metadata.source</c>, <c>metadata.version</c> and (when present) <c>metadata.schemaVersion</c> sit in
    /// the message, picked out while metadata is validated. Escaped values (rare) are left to the second pass in
    /// <see cref="ReadMetadata"/>.
    /// </summary>
    private struct MetadataValues(int sourceIndex, int versionIndex, int schemaVersionIndex) : IPropertyObserver
    {
        private bool _needsSecondPass = sourceIndex < 0 || versionIndex < 0;

        public int SourceStart { get; private set; } = -1;

        public int SourceLength { get; private set; }

        public int VersionStart { get; private set; } = -1;

        public int VersionLength { get; private set; }

        /// <summary>-1 when the event names no schema version.</summary>
        public int SchemaVersionStart { get; private set; } = -1;

        public int SchemaVersionLength { get; private set; }

        /// <summary>True when source and version, and schemaVersion if present, were found as plain strings (else use the second pass).</summary>
        public readonly bool Complete => !_needsSecondPass && SourceStart >= 0 && VersionStart >= 0;

        public void OnProperty(int index, ref Utf8JsonReader reader)
        {
            if (index != sourceIndex && index != versionIndex && index != schemaVersionIndex)
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
            else if (index == versionIndex)
            {
                VersionStart = start;
                VersionLength = reader.ValueSpan.Length;
            }
            else
            {
                SchemaVersionStart = start;
                SchemaVersionLength = reader.ValueSpan.Length;
            }
        }
    }

    /// <summary>
    /// Interns short, often repeated UTF-8 strings (sources, app versions) so that decoding them does not allocate.
    /// Holds at most its capacity; when full, a new string replaces the entries in turn. The last hit is tried first.
    /// </summary>
    private sealed class StringCache(int capacity)
    {
        private readonly byte[][] _utf8 = new byte[capacity][];
        private readonly string[] _text = new string[capacity];
        private int _count;
        private int _last;
        private int _replace;

        public string Get(ReadOnlySpan<byte> utf8)
        {
            if (_count > 0 && utf8.SequenceEqual(_utf8[_last]))
            {
                return _text[_last];
            }

            for (var i = 0; i < _count; i++)
            {
                if (utf8.SequenceEqual(_utf8[i]))
                {
                    _last = i;
                    return _text[i];
                }
            }

            return Add(utf8.ToArray(), Encoding.UTF8.GetString(utf8));
        }

        public string Get(ref Utf8JsonReader reader)
        {
            for (var i = 0; i < _count; i++)
            {
                if (reader.ValueTextEquals(_utf8[i]))
                {
                    _last = i;
                    return _text[i];
                }
            }

            var text = reader.GetString()!;
            return Add(Encoding.UTF8.GetBytes(text), text);
        }

        private string Add(byte[] utf8, string text)
        {
            int slot;
            if (_count < _utf8.Length)
            {
                slot = _count++;
            }
            else
            {
                slot = _replace;
                _replace = (_replace + 1) % _utf8.Length;
            }

            _utf8[slot] = utf8;
            _text[slot] = text;
            _last = slot;
            return text;
        }
    }
}
