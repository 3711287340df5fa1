using System.Globalization;
using System.Text;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>Reads values out of ClickHouse's TabSeparated output: escaping, nulls, numbers and arrays.</summary>
public static class ClickHouseText
{
    /// <summary>TabSeparated's NULL.</summary>
    public const string Null = "\\N";

    /// <summary>Undoes TabSeparated escaping of one field (\t, \n, \\, \', \0, \r, \b, \f).</summary>
    public static string Unescape(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var sb = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            var c = field[i];
            if (c != '\\' || i + 1 == field.Length)
            {
                sb.Append(c);
                continue;
            }

            var next = field[++i];
            sb.Append(Escaped(next));
        }

        return sb.ToString();
    }

    /// <summary>A number field: null for NULL, nan and ±inf; a whole number when it is one.</summary>
    public static double? Number(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return field is Null or "nan" or "-nan" or "inf" or "-inf" or "+inf"
            ? null
            : double.Parse(field, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>The elements of an array field, e.g. <c>['a','b\'c']</c> or <c>[1,2]</c>, as text (strings unquoted and unescaped).</summary>
    public static IReadOnlyList<string> Array(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        var text = Unescape(field);
        if (text.Length < 2 || text[0] != '[' || text[^1] != ']')
        {
            throw new FormatException($"not a ClickHouse array: '{(text.Length > 64 ? text[..64] + "…" : text)}'");
        }

        var items = new List<string>();
        var i = 1;
        while (i < text.Length - 1)
        {
            if (text[i] == '\'')
            {
                var sb = new StringBuilder();
                for (i++; i < text.Length && text[i] != '\''; i++)
                {
                    sb.Append(text[i] == '\\' && i + 1 < text.Length ? Escaped(text[++i]) : text[i]);
                }

                items.Add(sb.ToString());
                i++; // closing quote
            }
            else
            {
                var end = text.IndexOf(',', i);
                end = end < 0 ? text.Length - 1 : end;
                items.Add(text[i..end]);
                i = end;
            }

            if (i < text.Length - 1 && text[i] == ',')
            {
                i++;
            }
        }

        return items;
    }

    private static char Escaped(char next) => next switch
    {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        '0' => '\0',
        'b' => '\b',
        'f' => '\f',
        _ => next,
    };
}
