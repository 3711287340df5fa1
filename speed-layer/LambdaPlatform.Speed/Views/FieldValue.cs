namespace LambdaPlatform.Speed.Views;

/// <summary>What kind of value a field held in one event.</summary>
public enum FieldKind : byte
{
    /// <summary>Absent or JSON null.</summary>
    Missing,
    /// <summary>A string: <see cref="FieldValue.Text"/> or <see cref="FieldValue.Utf8"/>.</summary>
    Text,
    /// <summary>A number: <see cref="FieldValue.Number"/>.</summary>
    Number,
    /// <summary>true/false: <see cref="FieldValue.Number"/> is 1 or 0.</summary>
    Boolean,
}

/// <summary>One field's value in one event. Payload text stays UTF-8 (no string is made unless needed); envelope text is already a string.</summary>
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
}
