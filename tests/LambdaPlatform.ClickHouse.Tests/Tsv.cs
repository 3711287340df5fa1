using System.Globalization;
using System.Text;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>An independent reader of ClickHouse's TabSeparated output, for typed read-back.</summary>
internal static class Tsv
{
    public static async Task<List<string?[]>> ReadAsync(IClickHouse clickHouse, string sql)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true));
        var rows = new List<string?[]>();
        while (await reader.ReadLineAsync() is { } line)
        {
            rows.Add(line.Split('\t').Select(Unescape).ToArray());
        }

        return rows;
    }

    public static async Task<string> ScalarAsync(IClickHouse clickHouse, string sql)
    {
        var rows = await ReadAsync(clickHouse, sql);
        Assert.Single(rows);
        Assert.Single(rows[0]);
        return rows[0][0]!;
    }

    public static string? Unescape(string field)
    {
        if (field == "\\N")
        {
            return null;
        }

        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var builder = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            var ch = field[i];
            if (ch != '\\' || i + 1 == field.Length)
            {
                builder.Append(ch);
                continue;
            }

            var next = field[++i];
            builder.Append(next switch
            {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                '0' => '\0',
                'b' => '\b',
                'f' => '\f',
                'a' => '\a',
                'v' => '\v',
                _ => next,
            });
        }

        return builder.ToString();
    }

    public static double ParseDouble(string text) => text switch
    {
        "nan" or "-nan" => double.NaN,
        "inf" or "+inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    public static float ParseFloat(string text) => text switch
    {
        "nan" or "-nan" => float.NaN,
        "inf" or "+inf" => float.PositiveInfinity,
        "-inf" => float.NegativeInfinity,
        _ => float.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    /// <summary>A Date as text; 18.16 prints day 0 (1970-01-01) as 0000-00-00.</summary>
    public static DateOnly ParseDate(string? text) =>
        text == "0000-00-00" ? DateOnly.FromDateTime(DateTime.UnixEpoch) : DateOnly.ParseExact(text!, "yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static T Parse<T>(string? text)
        where T : IParsable<T> => T.Parse(text!, CultureInfo.InvariantCulture);
}
