using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;

namespace LambdaPlatform.Schemas.Validation;

/// <summary>
/// Checks the JSON value under a <see cref="Utf8JsonReader"/> against a <see cref="CompiledSchema"/> in
/// one forward pass. Allocates nothing when the value is valid; on the first violation it stops and
/// returns a <see cref="Violation"/> naming the JSON path and the rule.
/// </summary>
public static class SchemaValidator
{
    /// <summary>
    /// Validates the value whose first token the reader is on. On success the reader is left on the
    /// value's last token (the scalar itself, or the closing brace/bracket).
    /// </summary>
    /// <returns>null when valid, else the first violation (its path relative to this value).</returns>
    public static Violation? Validate(ref Utf8JsonReader reader, CompiledSchema schema)
    {
        var token = reader.TokenType;
        switch (token)
        {
            case JsonTokenType.StartObject:
                var none = default(NoObserver);
                return CheckType(schema, JsonTypes.Object) ?? ValidateObject(ref reader, schema, ref none);
            case JsonTokenType.StartArray:
                return CheckType(schema, JsonTypes.Array) ?? ValidateArray(ref reader, schema);
            case JsonTokenType.String:
                var ignored = default(FormatValues);
                return CheckType(schema, JsonTypes.String) ?? ValidateString(ref reader, schema, ref ignored);
            case JsonTokenType.Number:
                return ValidateNumber(ref reader, schema);
            case JsonTokenType.True:
            case JsonTokenType.False:
                return CheckType(schema, JsonTypes.Boolean) ?? CheckEnumLiteral(schema, token == JsonTokenType.True ? JsonValueKind.True : JsonValueKind.False);
            case JsonTokenType.Null:
                return CheckType(schema, JsonTypes.Null) ?? CheckEnumLiteral(schema, JsonValueKind.Null);
            default:
                return Violations.UnexpectedToken(token);
        }
    }

    /// <summary>
    /// <see cref="Validate(ref Utf8JsonReader, CompiledSchema)"/> that also hands back the value a string
    /// format was parsed into (so a caller needing the <see cref="Guid"/> or time does not parse it again).
    /// </summary>
    internal static Violation? Validate(ref Utf8JsonReader reader, CompiledSchema schema, ref FormatValues values) =>
        reader.TokenType == JsonTokenType.String
            ? CheckType(schema, JsonTypes.String) ?? ValidateString(ref reader, schema, ref values)
            : Validate(ref reader, schema);

    /// <summary>
    /// <see cref="Validate(ref Utf8JsonReader, CompiledSchema)"/> that, when the value is an object, shows
    /// <paramref name="observer"/> each declared property once its value has passed (so a caller can pick
    /// values out in the same pass).
    /// </summary>
    internal static Violation? Validate<TObserver>(ref Utf8JsonReader reader, CompiledSchema schema, ref TObserver observer)
        where TObserver : struct, IPropertyObserver =>
        reader.TokenType == JsonTokenType.StartObject
            ? CheckType(schema, JsonTypes.Object) ?? ValidateObject(ref reader, schema, ref observer)
            : Validate(ref reader, schema);

    private static Violation? CheckType(CompiledSchema schema, JsonTypes actual)
    {
        if (schema.Types == JsonTypes.None || (schema.Types & actual) != 0)
        {
            return null;
        }

        return Violations.WrongType(schema.Types, actual);
    }

    private static Violation? ValidateObject<TObserver>(ref Utf8JsonReader reader, CompiledSchema schema, ref TObserver observer)
        where TObserver : struct, IPropertyObserver
    {
        var properties = schema.PropertyArray;
        ulong seen = 0;
        var next = 0;
        List<string>? undeclaredSeen = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var index = schema.FindProperty(ref reader, next);
            if (index >= 0)
            {
                var bit = 1UL << index;
                var property = properties[index];
                if ((seen & bit) != 0)
                {
                    return Violations.Duplicate(property.Name);
                }

                seen |= bit;
                next = index + 1;
                reader.Read();
                var violation = Validate(ref reader, property.Schema);
                if (violation is not null)
                {
                    return violation.Under(property.Name);
                }

                observer.OnProperty(index, ref reader);
                continue;
            }

            if (!schema.AdditionalPropertiesAllowed)
            {
                var name = reader.GetString() ?? string.Empty;
                return Violations.NotAllowed(name, schema);
            }

            if (schema.RequiredUndeclared.Length > 0)
            {
                (undeclaredSeen ??= []).Add(reader.GetString() ?? string.Empty);
            }

            if (schema.AdditionalProperties is { } additional)
            {
                var name = reader.GetString() ?? string.Empty;
                reader.Read();
                var violation = Validate(ref reader, additional);
                if (violation is not null)
                {
                    return violation.Under(name);
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        var missing = schema.RequiredMask & ~seen;
        if (missing != 0)
        {
            var name = properties[System.Numerics.BitOperations.TrailingZeroCount(missing)].Name;
            return Violations.Required(name);
        }

        foreach (var name in schema.RequiredUndeclared)
        {
            if (undeclaredSeen is null || !undeclaredSeen.Contains(name))
            {
                return Violations.Required(name);
            }
        }

        return null;
    }

    private static Violation? ValidateArray(ref Utf8JsonReader reader, CompiledSchema schema)
    {
        var count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (schema.Items is { } items)
            {
                var violation = Validate(ref reader, items);
                if (violation is not null)
                {
                    return violation.UnderIndex(count);
                }
            }
            else
            {
                reader.Skip();
            }

            count++;
            if (schema.MaxItems >= 0 && count > schema.MaxItems)
            {
                return Violations.MaxItems(schema.MaxItems);
            }
        }

        if (schema.MinItems >= 0 && count < schema.MinItems)
        {
            return Violations.MinItems(count, schema.MinItems);
        }

        return null;
    }

    private static Violation? ValidateString(ref Utf8JsonReader reader, CompiledSchema schema, ref FormatValues values)
    {
        // Raw bytes equal the string's UTF-8 unless it has escapes; the reader over one span has no sequences.
        var plain = !reader.ValueIsEscaped && !reader.HasValueSequence;
        if ((schema.MinLength >= 0 || schema.MaxLength >= 0) && !(plain && LengthSurelyFits(reader.ValueSpan.Length, schema)))
        {
            var length = CodePointLength(ref reader);
            if (schema.MinLength >= 0 && length < schema.MinLength)
            {
                return Violations.MinLength(length, schema.MinLength);
            }

            if (schema.MaxLength >= 0 && length > schema.MaxLength)
            {
                return Violations.MaxLength(length, schema.MaxLength);
            }
        }

        switch (schema.Format)
        {
            case StringFormat.Uuid:
                if (!(plain && Utf8Formats.TryParseUuid(reader.ValueSpan, out values.Uuid)) && !TryParseUuidSlow(ref reader, out values.Uuid))
                {
                    return Violations.NotUuid();
                }

                values.Parsed = StringFormat.Uuid;
                break;
            case StringFormat.DateTime:
                if (!IsDateTime(ref reader, out values.DateTime))
                {
                    return Violations.NotDateTime();
                }

                values.Parsed = StringFormat.DateTime;
                break;
        }

        if (schema.Enum is { } allowed)
        {
            if (plain)
            {
                var span = reader.ValueSpan;
                foreach (var value in allowed)
                {
                    if (value.Kind == JsonValueKind.String && span.SequenceEqual(value.Utf8String))
                    {
                        return null;
                    }
                }
            }
            else
            {
                foreach (var value in allowed)
                {
                    if (value.Kind == JsonValueKind.String && reader.ValueTextEquals(value.Utf8String))
                    {
                        return null;
                    }
                }
            }

            return Violations.NotInEnum(schema);
        }

        return null;
    }

    /// <summary>
    /// True when a string of <paramref name="bytes"/> UTF-8 bytes meets the length bounds whatever its
    /// content: a code point takes 1 to 4 bytes, so the count lies between bytes / 4 and bytes.
    /// </summary>
    private static bool LengthSurelyFits(int bytes, CompiledSchema schema) =>
        (schema.MaxLength < 0 || bytes <= schema.MaxLength) && (schema.MinLength <= 0 || bytes >= 4L * schema.MinLength);

    private static Violation? ValidateNumber(ref Utf8JsonReader reader, CompiledSchema schema)
    {
        // Numbers never carry escapes; the hand-written parser takes the short plain ones, the reader the rest.
        if ((reader.HasValueSequence || !Utf8Formats.TryParseDouble(reader.ValueSpan, out var value))
            && (!reader.TryGetDouble(out value) || !double.IsFinite(value)))
        {
            return Violations.NumberOutOfRange();
        }

        var isInteger = value == Math.Floor(value);
        var actual = isInteger ? JsonTypes.Integer | JsonTypes.Number : JsonTypes.Number;
        if (schema.Types != JsonTypes.None && (schema.Types & actual) == 0)
        {
            return Violations.WrongNumberType(schema.Types, isInteger);
        }

        if (schema.Minimum is { } min && value < min)
        {
            return Violations.Minimum(min, value);
        }

        if (schema.Maximum is { } max && value > max)
        {
            return Violations.Maximum(max, value);
        }

        if (schema.ExclusiveMinimum is { } xmin && value <= xmin)
        {
            return Violations.ExclusiveMinimum(xmin, value);
        }

        if (schema.ExclusiveMaximum is { } xmax && value >= xmax)
        {
            return Violations.ExclusiveMaximum(xmax, value);
        }

        if (schema.Enum is { } values)
        {
            foreach (var v in values)
            {
                if (v.Kind == JsonValueKind.Number && v.Number == value)
                {
                    return null;
                }
            }

            return Violations.NotInEnum(schema);
        }

        return null;
    }

    private static Violation? CheckEnumLiteral(CompiledSchema schema, JsonValueKind kind)
    {
        if (schema.Enum is not { } values)
        {
            return null;
        }

        foreach (var v in values)
        {
            if (v.Kind == kind)
            {
                return null;
            }
        }

        return Violations.NotInEnum(schema);
    }

    /// <summary>True when the reader's string is a UUID in 8-4-4-4-12 form.</summary>
    public static bool IsUuid(ref Utf8JsonReader reader) =>
        (!reader.ValueIsEscaped && !reader.HasValueSequence && Utf8Formats.TryParseUuid(reader.ValueSpan, out _)) || TryParseUuidSlow(ref reader, out _);

    private static bool TryParseUuidSlow(ref Utf8JsonReader reader, out Guid value)
    {
        value = default;
        if (reader.ValueIsEscaped || reader.HasValueSequence)
        {
            // The same strict 36-byte rule on the unescaped text (Guid.TryParseExact would trim whitespace such
            // as an escaped "\n", which is not part of a UUID). 36 characters take at most 6 × 36 escaped bytes.
            var escapedLength = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
            if (escapedLength > 6 * 36)
            {
                return false;
            }

            Span<byte> unescaped = stackalloc byte[6 * 36];
            var length = reader.CopyString(unescaped);
            return length == 36 && Utf8Parser.TryParse(unescaped[..36], out value, out var used, 'D') && used == 36;
        }

        var span = reader.ValueSpan;
        return span.Length == 36 && Utf8Parser.TryParse(span, out value, out var consumed, 'D') && consumed == 36;
    }

    /// <summary>
    /// True when the reader's string is an ISO-8601/RFC 3339 date-time that carries an explicit offset
    /// (<c>Z</c> or <c>±hh:mm</c>); a local time without an offset is ambiguous and refused.
    /// </summary>
    public static bool IsDateTime(ref Utf8JsonReader reader, out DateTimeOffset value)
    {
        // The common shapes (…T19:00:00.000Z, …T19:00:00+02:00) are parsed by hand; anything else by the reader.
        if (reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped && !reader.HasValueSequence
            && Utf8Formats.TryParseDateTime(reader.ValueSpan, out value))
        {
            return true;
        }

        if (!reader.TryGetDateTimeOffset(out value))
        {
            return false;
        }

        // TryGetDateTimeOffset succeeded, so the unescaped text is short (at most ~40 bytes).
        Span<byte> unescaped = stackalloc byte[128];
        ReadOnlySpan<byte> span = reader.ValueIsEscaped || reader.HasValueSequence
            ? unescaped[..reader.CopyString(unescaped)]
            : reader.ValueSpan;

        if (span.Length < 11)
        {
            return false;
        }

        var last = span[^1];
        if (last is (byte)'Z' or (byte)'z')
        {
            return true;
        }

        // ±hh:mm at the end, after the time part.
        var timeStart = span.IndexOfAny((byte)'T', (byte)'t');
        return timeStart > 0 && span.Length - 6 > timeStart && span[^3] == (byte)':' && (span[^6] == (byte)'+' || span[^6] == (byte)'-');
    }

    private static int CodePointLength(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            return CountCodePoints(reader.ValueSpan);
        }

        var length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var written = reader.CopyString(buffer);
            return CountCodePoints(buffer.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static int CountCodePoints(ReadOnlySpan<byte> utf8)
    {
        // Every code point has exactly one byte that is not a continuation byte (10xxxxxx).
        var count = 0;
        foreach (var b in utf8)
        {
            if ((b & 0xC0) != 0x80)
            {
                count++;
            }
        }

        return count;
    }
}

/// <summary>Sees each declared property of an object after its value passed validation.</summary>
internal interface IPropertyObserver
{
    /// <summary>Called with the property's index in <see cref="CompiledSchema.Properties"/>; the reader is on the value's last token.</summary>
    void OnProperty(int index, ref Utf8JsonReader reader);
}

/// <summary>The observer that looks at nothing (compiled away).</summary>
internal struct NoObserver : IPropertyObserver
{
    public readonly void OnProperty(int index, ref Utf8JsonReader reader)
    {
    }
}

/// <summary>The value a string <c>format</c> was parsed into during validation.</summary>
internal struct FormatValues
{
    /// <summary>Which of the fields below holds a value (<see cref="StringFormat.None"/>: neither).</summary>
    public StringFormat Parsed;

    /// <summary>The UUID, when <see cref="Parsed"/> is <see cref="StringFormat.Uuid"/>.</summary>
    public Guid Uuid;

    /// <summary>The time, when <see cref="Parsed"/> is <see cref="StringFormat.DateTime"/>.</summary>
    public DateTimeOffset DateTime;
}
