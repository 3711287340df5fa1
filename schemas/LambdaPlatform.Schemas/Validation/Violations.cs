using System.Runtime.CompilerServices;
using System.Text.Json;

namespace LambdaPlatform.Schemas.Validation;

/// <summary>
/// Builds the violations <see cref="SchemaValidator"/> reports. Kept out of line: formatting a message
/// needs a large stack frame, which would otherwise be set up on every call of the hot checks.
/// </summary>
internal static class Violations
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation UnexpectedToken(JsonTokenType token) => new("type", $"unexpected JSON token {token}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation WrongType(JsonTypes expected, JsonTypes actual) => new("type", $"expected {Describe(expected)}, got {Describe(actual)}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation WrongNumberType(JsonTypes expected, bool isInteger) =>
        new("type", $"expected {Describe(expected)}, got {(isInteger ? "integer" : "number")}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation Duplicate(string name) => new Violation("duplicate", $"property '{name}' appears more than once").Under(name);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation NotAllowed(string name, CompiledSchema schema) =>
        new Violation("additionalProperties", $"property '{name}' is not allowed here (allowed: {string.Join(", ", schema.Properties.Select(p => p.Name))})").Under(name);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation Required(string name) => new("required", $"required property '{name}' is missing");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation MaxItems(int max) => new("maxItems", $"array has more than {max} items");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation MinItems(int count, int min) => new("minItems", $"array has {count} items, fewer than {min}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation MinLength(int length, int min) => new("minLength", $"string has {length} characters, fewer than {min}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation MaxLength(int length, int max) => new("maxLength", $"string has {length} characters, more than {max}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation NotUuid() => new("format", "not a UUID (expected 8-4-4-4-12 hex digits)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation NotDateTime() => new("format", "not an RFC 3339 date-time with an offset (e.g. 2026-11-28T19:00:00.000Z)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation NotInEnum(CompiledSchema schema) => new("enum", $"must be one of {schema.EnumText}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation NumberOutOfRange() => new("type", "number is out of range");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation Minimum(double min, double value) => new("minimum", $"must be >= {min}, got {value}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation Maximum(double max, double value) => new("maximum", $"must be <= {max}, got {value}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation ExclusiveMinimum(double min, double value) => new("exclusiveMinimum", $"must be > {min}, got {value}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Violation ExclusiveMaximum(double max, double value) => new("exclusiveMaximum", $"must be < {max}, got {value}");

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
