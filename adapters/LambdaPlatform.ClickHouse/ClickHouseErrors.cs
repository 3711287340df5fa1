using System.Text.RegularExpressions;

namespace LambdaPlatform.ClickHouse;

/// <summary>Reads ClickHouse error texts the same way for every backend and server version.</summary>
internal static partial class ClickHouseErrors
{
    // 18.16 writes "Code: 60, e.displayText() = DB::Exception: ..."; current versions "Code: 60. DB::Exception: ...".
    [GeneratedRegex(@"Code:\s*(\d+)\s*[.,]", RegexOptions.CultureInvariant)]
    private static partial Regex CodePattern();

    /// <summary>The ClickHouse error code in <paramref name="text"/>, or null when it carries none.</summary>
    public static int? ParseCode(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var match = CodePattern().Match(text);
        return match.Success && int.TryParse(match.Groups[1].ValueSpan, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code)
            ? code
            : null;
    }

    /// <summary>
    /// True for errors caused by load or the environment rather than by the request, so the same request may
    /// succeed later: timeouts, too many queries or parts, memory pressure, network and replication trouble.
    /// </summary>
    public static bool IsTransient(int code) => code switch
    {
        159 => true, // TIMEOUT_EXCEEDED
        160 => true, // TOO_SLOW
        164 => false, // READONLY (a setting, not load)
        202 => true, // TOO_MANY_SIMULTANEOUS_QUERIES
        203 => true, // NO_FREE_CONNECTION
        209 => true, // SOCKET_TIMEOUT
        210 => true, // NETWORK_ERROR
        225 => true, // NO_ZOOKEEPER
        236 => true, // ABORTED
        241 => true, // MEMORY_LIMIT_EXCEEDED
        242 => true, // TABLE_IS_READ_ONLY
        252 => true, // TOO_MANY_PARTS
        285 => true, // TOO_FEW_LIVE_REPLICAS
        319 => true, // UNKNOWN_STATUS_OF_INSERT
        425 => true, // SYSTEM_ERROR
        439 => true, // CANNOT_SCHEDULE_TASK
        473 => true, // DEADLOCK_AVOIDED
        999 => true, // KEEPER_EXCEPTION
        _ => false,
    };

    /// <summary>Builds the exception for an error text a backend returned for <paramref name="query"/>.</summary>
    public static ClickHouseException FromServerText(string backend, string text, string? query, int? knownCode = null, Exception? inner = null)
    {
        var code = knownCode ?? ParseCode(text);
        var message = $"{backend}: {text.Trim()}";
        return new ClickHouseException(message, code, query, code is { } c && IsTransient(c), inner);
    }

    /// <summary>Quotes <paramref name="value"/> as a ClickHouse string literal.</summary>
    public static string QuoteString(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    /// <summary>Quotes <paramref name="name"/> as a ClickHouse identifier (accepted by 18.16 and 26.5).</summary>
    public static string QuoteIdentifier(string name) =>
        "`" + name.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("`", "\\`", StringComparison.Ordinal) + "`";

    /// <summary>Checks a format name before it is put into SQL: letters, digits and underscores only.</summary>
    public static void ValidateFormat(string format)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(format);
        foreach (var ch in format)
        {
            if (!char.IsAsciiLetterOrDigit(ch) && ch != '_')
            {
                throw new ArgumentException($"'{format}' is not a ClickHouse format name (letters, digits and '_' only).", nameof(format));
            }
        }
    }
}
