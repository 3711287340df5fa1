using System.Text;
using System.Text.Json;

namespace LambdaPlatform.Schemas.Validation;

/// <summary>JSON types as JSON Schema names them, as flags so a schema can allow several.</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720", Justification = "The names are JSON Schema's type names.")]
public enum JsonTypes
{
    /// <summary>No type constraint was declared.</summary>
    None = 0,
    /// <summary><c>"null"</c>.</summary>
    Null = 1,
    /// <summary><c>"boolean"</c>.</summary>
    Boolean = 2,
    /// <summary><c>"integer"</c>: a number with no fractional part.</summary>
    Integer = 4,
    /// <summary><c>"number"</c> (includes integers).</summary>
    Number = 8,
    /// <summary><c>"string"</c>.</summary>
    String = 16,
    /// <summary><c>"object"</c>.</summary>
    Object = 32,
    /// <summary><c>"array"</c>.</summary>
    Array = 64,
}

/// <summary>
/// One JSON Schema (draft 2020-12 subset) compiled into a form that a single forward pass of
/// <see cref="Utf8JsonReader"/> can check without allocating. The supported keywords are listed in
/// <see cref="SupportedKeywords"/>; a schema that uses any other keyword is refused at load time, so
/// a rule can never be silently ignored. Immutable and thread-safe once built.
/// </summary>
public sealed class CompiledSchema
{
    /// <summary>The keywords this compiler understands; annotations (title, description…) included.</summary>
    public static readonly IReadOnlySet<string> SupportedKeywords = new HashSet<string>(StringComparer.Ordinal)
    {
        "$schema", "$id", "$comment", "title", "description", "examples", "default",
        "type", "enum", "const", "properties", "required", "additionalProperties",
        "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "format", "items", "minItems", "maxItems",
    };

    private CompiledSchema() { }

    /// <summary>Allowed JSON types; <see cref="JsonTypes.None"/> allows any.</summary>
    public JsonTypes Types { get; private init; }

    /// <summary>Named properties of an object, in declaration order.</summary>
    public IReadOnlyList<SchemaProperty> Properties { get; private init; } = [];

    /// <summary><see cref="Properties"/> as an array, for hot loops (no interface dispatch).</summary>
    internal SchemaProperty[] PropertyArray { get; private init; } = [];

    /// <summary>Bit i set when <see cref="Properties"/>[i] is required.</summary>
    internal ulong RequiredMask { get; private init; }

    /// <summary>Required names that are not declared in <c>properties</c> (checked by name).</summary>
    internal string[] RequiredUndeclared { get; private init; } = [];

    /// <summary>False when <c>additionalProperties: false</c>.</summary>
    public bool AdditionalPropertiesAllowed { get; private init; } = true;

    /// <summary>Schema for additional properties when it is a schema, else null.</summary>
    public CompiledSchema? AdditionalProperties { get; private init; }

    /// <summary>Schema of every array item, or null.</summary>
    public CompiledSchema? Items { get; private init; }

    /// <summary>Minimum string length in Unicode code points, or -1.</summary>
    public int MinLength { get; private init; } = -1;

    /// <summary>Maximum string length in Unicode code points, or -1.</summary>
    public int MaxLength { get; private init; } = -1;

    /// <summary>Inclusive lower bound for numbers, or null.</summary>
    public double? Minimum { get; private init; }

    /// <summary>Inclusive upper bound for numbers, or null.</summary>
    public double? Maximum { get; private init; }

    /// <summary>Exclusive lower bound for numbers, or null.</summary>
    public double? ExclusiveMinimum { get; private init; }

    /// <summary>Exclusive upper bound for numbers, or null.</summary>
    public double? ExclusiveMaximum { get; private init; }

    /// <summary>Minimum array length, or -1.</summary>
    public int MinItems { get; private init; } = -1;

    /// <summary>Maximum array length, or -1.</summary>
    public int MaxItems { get; private init; } = -1;

    /// <summary>The <c>format</c> asserted (uuid, date-time), or none.</summary>
    public StringFormat Format { get; private init; }

    /// <summary>Allowed values (from <c>enum</c> or <c>const</c>) as canonical JSON text, or null.</summary>
    internal EnumValue[]? Enum { get; private init; }

    /// <summary>The enum values as written, for error messages.</summary>
    internal string? EnumText { get; private init; }

    /// <summary>
    /// Compiles <paramref name="schema"/>. <paramref name="where"/> names the file for error messages.
    /// </summary>
    /// <exception cref="SchemaLoadException">The schema uses an unsupported keyword or a malformed value.</exception>
    public static CompiledSchema Compile(JsonElement schema, string where) => Compile(schema, where, "#");

    private static CompiledSchema Compile(JsonElement schema, string where, string pointer)
    {
        if (schema.ValueKind == JsonValueKind.True)
        {
            return new CompiledSchema();
        }

        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw new SchemaLoadException(where, pointer, "a schema must be an object or true");
        }

        foreach (var keyword in schema.EnumerateObject())
        {
            if (!SupportedKeywords.Contains(keyword.Name))
            {
                throw new SchemaLoadException(where, $"{pointer}/{keyword.Name}",
                    $"unsupported keyword '{keyword.Name}' (supported: {string.Join(", ", SupportedKeywords.Order(StringComparer.Ordinal))})");
            }
        }

        var types = schema.TryGetProperty("type", out var typeElement) ? ParseTypes(typeElement, where, pointer + "/type") : JsonTypes.None;

        var properties = new List<SchemaProperty>();
        if (schema.TryGetProperty("properties", out var props))
        {
            if (props.ValueKind != JsonValueKind.Object)
            {
                throw new SchemaLoadException(where, pointer + "/properties", "must be an object");
            }

            foreach (var p in props.EnumerateObject())
            {
                properties.Add(new SchemaProperty(p.Name, Compile(p.Value, where, $"{pointer}/properties/{p.Name}")));
            }
        }

        if (properties.Count > 64)
        {
            throw new SchemaLoadException(where, pointer + "/properties", "at most 64 properties per object are supported");
        }

        ulong requiredMask = 0;
        var undeclared = new List<string>();
        if (schema.TryGetProperty("required", out var required))
        {
            foreach (var name in required.EnumerateArray())
            {
                var text = name.GetString() ?? throw new SchemaLoadException(where, pointer + "/required", "names must be strings");
                var index = properties.FindIndex(p => p.Name == text);
                if (index >= 0)
                {
                    requiredMask |= 1UL << index;
                }
                else
                {
                    undeclared.Add(text);
                }
            }
        }

        var additionalAllowed = true;
        CompiledSchema? additional = null;
        if (schema.TryGetProperty("additionalProperties", out var ap))
        {
            if (ap.ValueKind == JsonValueKind.False)
            {
                additionalAllowed = false;
            }
            else if (ap.ValueKind == JsonValueKind.Object)
            {
                additional = Compile(ap, where, pointer + "/additionalProperties");
            }
        }

        EnumValue[]? enumValues = null;
        string? enumText = null;
        if (schema.TryGetProperty("enum", out var en))
        {
            enumValues = [.. en.EnumerateArray().Select(EnumValue.From)];
            enumText = en.GetRawText();
        }
        else if (schema.TryGetProperty("const", out var cn))
        {
            enumValues = [EnumValue.From(cn)];
            enumText = "[" + cn.GetRawText() + "]";
        }

        var format = StringFormat.None;
        if (schema.TryGetProperty("format", out var fmt))
        {
            format = fmt.GetString() switch
            {
                "uuid" => StringFormat.Uuid,
                "date-time" => StringFormat.DateTime,
                var other => throw new SchemaLoadException(where, pointer + "/format", $"unsupported format '{other}' (supported: uuid, date-time)"),
            };
        }

        return new CompiledSchema
        {
            Types = types,
            PropertyArray = [.. properties],
            Properties = properties.AsReadOnly(),
            RequiredMask = requiredMask,
            RequiredUndeclared = [.. undeclared],
            AdditionalPropertiesAllowed = additionalAllowed,
            AdditionalProperties = additional,
            Items = schema.TryGetProperty("items", out var items) ? Compile(items, where, pointer + "/items") : null,
            MinLength = IntOr(schema, "minLength", where, pointer),
            MaxLength = IntOr(schema, "maxLength", where, pointer),
            MinItems = IntOr(schema, "minItems", where, pointer),
            MaxItems = IntOr(schema, "maxItems", where, pointer),
            Minimum = DoubleOrNull(schema, "minimum", where, pointer),
            Maximum = DoubleOrNull(schema, "maximum", where, pointer),
            ExclusiveMinimum = DoubleOrNull(schema, "exclusiveMinimum", where, pointer),
            ExclusiveMaximum = DoubleOrNull(schema, "exclusiveMaximum", where, pointer),
            Format = format,
            Enum = enumValues,
            EnumText = enumText,
        };
    }

    /// <summary>True when the schema asks only that the value be an object (no properties, enum or other rules).</summary>
    internal bool IsOnlyObjectType => Types == JsonTypes.Object && PropertyArray.Length == 0 && RequiredMask == 0 && RequiredUndeclared.Length == 0
        && AdditionalPropertiesAllowed && AdditionalProperties is null && Enum is null;

    /// <summary>Index of the declared property whose UTF-8 name equals the reader's current property name, or -1.</summary>
    internal int FindProperty(ref Utf8JsonReader reader) => FindProperty(ref reader, 0);

    /// <summary>
    /// Index of the declared property whose UTF-8 name equals the reader's current property name, or -1.
    /// <paramref name="hint"/> is tried first: producers mostly write properties in declaration order, so
    /// passing the previous index + 1 usually finds the name with one comparison.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal int FindProperty(ref Utf8JsonReader reader, int hint)
    {
        var list = PropertyArray;
        if ((uint)hint < (uint)list.Length && !reader.ValueIsEscaped && !reader.HasValueSequence && reader.ValueSpan.SequenceEqual(list[hint].Utf8Bytes))
        {
            return hint;
        }

        return FindPropertyScan(ref reader);
    }

    private int FindPropertyScan(ref Utf8JsonReader reader)
    {
        var list = PropertyArray;
        if (reader.ValueIsEscaped || reader.HasValueSequence)
        {
            for (var i = 0; i < list.Length; i++)
            {
                if (reader.ValueTextEquals(list[i].Utf8Bytes))
                {
                    return i;
                }
            }

            return -1;
        }

        var name = reader.ValueSpan;
        for (var i = 0; i < list.Length; i++)
        {
            if (name.SequenceEqual(list[i].Utf8Bytes))
            {
                return i;
            }
        }

        return -1;
    }

    private static JsonTypes ParseTypes(JsonElement element, string where, string pointer)
    {
        if (element.ValueKind == JsonValueKind.String)
        {
            return ParseType(element.GetString()!, where, pointer);
        }

        if (element.ValueKind == JsonValueKind.Array)
        {
            var result = JsonTypes.None;
            foreach (var t in element.EnumerateArray())
            {
                result |= ParseType(t.GetString() ?? string.Empty, where, pointer);
            }

            return result;
        }

        throw new SchemaLoadException(where, pointer, "must be a type name or an array of type names");
    }

    private static JsonTypes ParseType(string name, string where, string pointer) => name switch
    {
        "null" => JsonTypes.Null,
        "boolean" => JsonTypes.Boolean,
        "integer" => JsonTypes.Integer,
        "number" => JsonTypes.Number,
        "string" => JsonTypes.String,
        "object" => JsonTypes.Object,
        "array" => JsonTypes.Array,
        _ => throw new SchemaLoadException(where, pointer, $"unknown type '{name}'"),
    };

    private static int IntOr(JsonElement schema, string keyword, string where, string pointer)
    {
        if (!schema.TryGetProperty(keyword, out var value))
        {
            return -1;
        }

        return value.TryGetInt32(out var result) && result >= 0
            ? result
            : throw new SchemaLoadException(where, $"{pointer}/{keyword}", "must be a non-negative integer");
    }

    private static double? DoubleOrNull(JsonElement schema, string keyword, string where, string pointer)
    {
        if (!schema.TryGetProperty(keyword, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number
            ? value.GetDouble()
            : throw new SchemaLoadException(where, $"{pointer}/{keyword}", "must be a number");
    }
}

/// <summary>A declared object property and its schema.</summary>
public sealed class SchemaProperty
{
    /// <summary>Creates the property.</summary>
    public SchemaProperty(string name, CompiledSchema schema)
    {
        Name = name;
        Schema = schema;
        Utf8Bytes = Encoding.UTF8.GetBytes(name);
        Utf8Name = Utf8Bytes;
    }

    /// <summary>Property name.</summary>
    public string Name { get; }

    /// <summary>Property name as UTF-8, for comparisons against the reader without allocating.</summary>
    public ReadOnlyMemory<byte> Utf8Name { get; }

    /// <summary>Schema of the value.</summary>
    public CompiledSchema Schema { get; }

    /// <summary>The same bytes as <see cref="Utf8Name"/>, as an array for hot comparisons.</summary>
    internal byte[] Utf8Bytes { get; }
}

/// <summary>String formats the compiler asserts.</summary>
public enum StringFormat
{
    /// <summary>No format.</summary>
    None,
    /// <summary>RFC 4122 UUID in 8-4-4-4-12 hex form.</summary>
    Uuid,
    /// <summary>RFC 3339 date-time with a time-zone offset.</summary>
    DateTime,
}

/// <summary>One allowed value of <c>enum</c>/<c>const</c>.</summary>
internal sealed record EnumValue(JsonValueKind Kind, byte[]? Utf8String, double Number)
{
    public static EnumValue From(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => new EnumValue(JsonValueKind.String, Encoding.UTF8.GetBytes(element.GetString()!), 0),
        JsonValueKind.Number => new EnumValue(JsonValueKind.Number, null, element.GetDouble()),
        JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null => new EnumValue(element.ValueKind, null, 0),
        _ => throw new SchemaLoadException("enum", "#", "only string, number, boolean and null enum values are supported"),
    };
}
