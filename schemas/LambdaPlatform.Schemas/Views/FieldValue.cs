using System.IO.Hashing;
using System.Text;

namespace LambdaPlatform.Schemas.Views;

/// <summary>What kind of value a field held in one event.</summary>
public enum FieldKind : byte
{
    /// <summary>Absent, JSON null, or an object or array (views read scalar values only).</summary>
    Missing,
    /// <summary>A string: <see cref="FieldValue.Text"/> or <see cref="FieldValue.Utf8"/>.</summary>
    Text,
    /// <summary>A number: <see cref="FieldValue.Number"/>.</summary>
    Number,
    /// <summary>true/false: <see cref="FieldValue.Number"/> is 1 or 0.</summary>
    Boolean,
}

/// <summary>
/// One field's value in one event, as the real-time side reads it. Payload text stays UTF-8 (no string is made
/// unless needed); envelope text is already a string. The missing-value rule of every measure starts here: a value
/// is either <see cref="FieldKind.Missing"/> (skipped by every aggregate) or a scalar with one text form
/// (<see cref="FieldText"/>), the same one the batch SQL produces (<see cref="FieldSql"/>).
/// </summary>
/// <param name="Kind">Which of the value members is set.</param>
/// <param name="Number">Number or boolean (1/0).</param>
/// <param name="Utf8">Unescaped UTF-8 text, when <paramref name="Text"/> is null.</param>
/// <param name="Text">The text as a string, when already one.</param>
public readonly record struct FieldValue(FieldKind Kind, double Number, ReadOnlyMemory<byte> Utf8, string? Text = null)
{
    /// <summary>No value.</summary>
    public static readonly FieldValue Missing;

    /// <summary>A text value from UTF-8 bytes.</summary>
    public static FieldValue OfUtf8(ReadOnlyMemory<byte> utf8) => new(FieldKind.Text, 0, utf8);

    /// <summary>A text value from a string.</summary>
    public static FieldValue OfText(string text) => new(FieldKind.Text, 0, default, text);

    /// <summary>A number.</summary>
    public static FieldValue Of(double number) => new(FieldKind.Number, number, default);

    /// <summary>A boolean.</summary>
    public static FieldValue Of(bool value) => new(FieldKind.Boolean, value ? 1 : 0, default);

    /// <summary>True when the value is a JSON number; only numbers feed sum, min, max and quantile (anything else is skipped).</summary>
    public bool IsNumber => Kind == FieldKind.Number;

    /// <summary>The value's text form (<see cref="FieldText"/>), or null when missing: what distinct, top-k, dimensions and filters read.</summary>
    public string? AsText() => Kind switch
    {
        FieldKind.Text => Text ?? Encoding.UTF8.GetString(Utf8.Span),
        FieldKind.Number => FieldText.Number(Number),
        FieldKind.Boolean => FieldText.Boolean(Number != 0),
        _ => null,
    };

    /// <summary>XXH64 (seed 0) of the UTF-8 bytes of <see cref="AsText"/>; the value must not be missing. Allocation-free for payload text.</summary>
    public ulong TextHash()
    {
        if (Kind == FieldKind.Text && Text is null)
        {
            return XxHash64.HashToUInt64(Utf8.Span);
        }

        var text = AsText() ?? throw new InvalidOperationException("a missing value has no text");
        Span<byte> buffer = stackalloc byte[256];
        return text.Length <= 80
            ? XxHash64.HashToUInt64(buffer[..Encoding.UTF8.GetBytes(text, buffer)])
            : XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text));
    }
}
