using System.Text;

namespace LambdaPlatform.Serving;

/// <summary>ClickHouse's TabSeparated text escaping.</summary>
public static class Tsv
{
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
            sb.Append(next switch
            {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                '0' => '\0',
                'b' => '\b',
                'f' => '\f',
                _ => next,
            });
        }

        return sb.ToString();
    }
}
