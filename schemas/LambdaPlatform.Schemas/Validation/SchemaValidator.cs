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
                return CheckType(schema, JsonTypes.Object) ?? ValidateObject(ref reader, schema);
            case JsonTokenType.StartArray:
                return CheckType(schema, JsonTypes.Array) ?? ValidateArray(ref reader, schema);
            case JsonTokenType.String:
                return CheckType(schema, JsonTypes.String) ?? ValidateString(ref reader, schema);
            case JsonTokenType.Number:
                return ValidateNumber(ref reader, schema);
            case JsonTokenType.True:
            case JsonTokenType.False:
                return CheckType(schema, JsonTypes.Boolean) ?? CheckEnumLiteral(schema, token == JsonTokenType.True ? JsonValueKind.True : JsonValueKind.False);
            case JsonTokenType.Null:
                return CheckType(schema, JsonTypes.Null) ?? CheckEnumLiteral(schema, JsonValueKind.Null);
            default:
                return new Violation("type", $"unexpected JSON token {token}");
        }
    }

    private static Violation? CheckType(CompiledSchema schema, JsonTypes actual)
    {
        if (schema.Types == JsonTypes.None || (schema.Types & actual) != 0)
        {
            return null;
        }

        return new Violation("type", $"expected {Describe(schema.Types)}, got {Describe(actual)}");
    }

    private static Violation? ValidateObject(ref Utf8JsonReader reader, CompiledSchema schema)
    {
        ulong seen = 0;
        List<string>? undeclaredSeen = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var index = schema.FindProperty(ref reader);
            if (index >= 0)
            {
                var bit = 1UL << index;
                var name = schema.Properties[index].Name;
                if ((seen & bit) != 0)
                {
                    return new Violation("duplicate", $"property '{name}' appears more than once").Under(name);
                }

                seen |= bit;
                reader.Read();
                var violation = Validate(ref reader, schema.Properties[index].Schema);
                if (violation is not null)
                {
                    return violation.Under(name);
                }

                continue;
            }

            if (!schema.AdditionalPropertiesAllowed)
            {
                var name = reader.GetString() ?? string.Empty;
                return new Violation("additionalProperties", $"property '{name}' is not allowed here (allowed: {string.Join(", ", schema.Properties.Select(p => p.Name))})").Under(name);
            }

            if (schema.RequiredUndeclared.Count > 0)
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
            var name = schema.Properties[System.Numerics.BitOperations.TrailingZeroCount(missing)].Name;
            return new Violation("required", $"required property '{name}' is missing");
        }

        foreach (var name in schema.RequiredUndeclared)
        {
            if (undeclaredSeen is null || !undeclaredSeen.Contains(name))
            {
                return new Violation("required", $"required property '{name}' is missing");
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
                return new Violation("maxItems", $"array has more than {schema.MaxItems} items");
            }
        }

        if (schema.MinItems >= 0 && count < schema.MinItems)
        {
            return new Violation("minItems", $"array has {count} items, fewer than {schema.MinItems}");
        }

        return null;
    }

    private static Violation? ValidateString(ref Utf8JsonReader reader, CompiledSchema schema)
    {
        if (schema.MinLength >= 0 || schema.MaxLength >= 0)
        {
            var length = CodePointLength(ref reader);
            if (schema.MinLength >= 0 && length < schema.MinLength)
            {
                return new Violation("minLength", $"string has {length} characters, fewer than {schema.MinLength}");
            }

            if (schema.MaxLength >= 0 && length > schema.MaxLength)
            {
                return new Violation("maxLength", $"string has {length} characters, more than {schema.MaxLength}");
            }
        }

        switch (schema.Format)
        {
            case StringFormat.Uuid when !IsUuid(ref reader):
                return new Violation("format", "not a UUID (expected 8-4-4-4-12 hex digits)");
            case StringFormat.DateTime when !IsDateTime(ref reader, out _):
                return new Violation("format", "not an RFC 3339 date-time with an offset (e.g. 2026-11-28T19:00:00.000Z)");
        }

        if (schema.Enum is { } values)
        {
            foreach (var value in values)
            {
                if (value.Kind == JsonValueKind.String && reader.ValueTextEquals(value.Utf8String))
                {
                    return null;
                }
            }

            return new Violation("enum", $"must be one of {schema.EnumText}");
        }

        return null;
    }

    private static Violation? ValidateNumber(ref Utf8JsonReader reader, CompiledSchema schema)
    {
        if (!reader.TryGetDouble(out var value) || !double.IsFinite(value))
        {
            return new Violation("type", "number is out of range");
        }

        var isInteger = value == Math.Floor(value);
        var actual = isInteger ? JsonTypes.Integer | JsonTypes.Number : JsonTypes.Number;
        if (schema.Types != JsonTypes.None && (schema.Types & actual) == 0)
        {
            return new Violation("type", $"expected {Describe(schema.Types)}, got {(isInteger ? "integer" : "number")}");
        }

        if (schema.Minimum is { } min && value < min)
        {
            return new Violation("minimum", $"must be >= {min}, got {value}");
        }

        if (schema.Maximum is { } max && value > max)
        {
            return new Violation("maximum", $"must be <= {max}, got {value}");
        }

        if (schema.ExclusiveMinimum is { } xmin && value <= xmin)
        {
            return new Violation("exclusiveMinimum", $"must be > {xmin}, got {value}");
        }

        if (schema.ExclusiveMaximum is { } xmax && value >= xmax)
        {
            return new Violation("exclusiveMaximum", $"must be < {xmax}, got {value}");
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

            return new Violation("enum", $"must be one of {schema.EnumText}");
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

        return new Violation("enum", $"must be one of {schema.EnumText}");
    }

    /// <summary>True when the reader's string is a UUID in 8-4-4-4-12 form.</summary>
    public static bool IsUuid(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence)
        {
            return Guid.TryParseExact(reader.GetString(), "D", out _);
        }

        var span = reader.ValueSpan;
        return span.Length == 36 && Utf8Parser.TryParse(span, out Guid _, out var consumed, 'D') && consumed == 36;
    }

    /// <summary>
    /// True when the reader's string is an ISO-8601/RFC 3339 date-time that carries an explicit offset
    /// (<c>Z</c> or <c>±hh:mm</c>); a local time without an offset is ambiguous and refused.
    /// </summary>
    public static bool IsDateTime(ref Utf8JsonReader reader, out DateTimeOffset value)
    {
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

    private static string Describe(JsonTypes types)
    {
        if (types == (JsonTypes.Integer | JsonTypes.Number))
        {
            return "integer";
        }

        var names = new List<string>(2);
        foreach (var t in Enum.GetValues<JsonTypes>())
        {
            if (t != JsonTypes.None && (types & t) != 0)
            {
                names.Add(t.ToString().ToLowerInvariant());
            }
        }

        return string.Join(" or ", names);
    }
}
