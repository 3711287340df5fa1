using System.Globalization;
using System.IO.Hashing;
using Microsoft.Extensions.Primitives;

namespace LambdaPlatform.Serving.Views;

/// <summary>
/// HTTP caching of view answers, the level in front of <see cref="AnswerCache{T}"/>:
/// <list type="bullet">
/// <item><c>ETag</c>: weak (the body's <c>speedLagSeconds</c> and Kafka lag change with every request, the data does not), a hash
/// of the rows, W and the newest real-time bucket, the same on every API instance. A request whose <c>If-None-Match</c> names it
/// gets <c>304 Not Modified</c> (with the current lag in <see cref="ViewsEndpoints.SpeedLagHeader"/>).</item>
/// <item><c>Cache-Control</c> from freshness: a range wholly below W is exact and changes only when late events make the batch
/// recompute a day, so clients may reuse it for the API's cache TTL (<c>private, max-age</c>); a range reaching at or above W
/// changes with every speed flush, so clients revalidate each time (<c>private, no-cache</c>), which the ETag makes cheap.
/// <c>private</c>: answers may sit behind API keys, so shared caches keep none.</item>
/// </list>
/// </summary>
public static class HttpCaching
{
    /// <summary>The weak entity tag of an answer: <c>W/"</c> 16 hex digits <c>"</c>.</summary>
    public static string ETag(ReadOnlySpan<byte> rows, DateTime? watermark, DateTime? newestRealtimeBucket)
    {
        var seed = unchecked(((watermark?.Ticks ?? -1) * 1_000_003) ^ (newestRealtimeBucket?.Ticks ?? -1));
        return string.Create(CultureInfo.InvariantCulture, $"W/\"{XxHash3.HashToUInt64(rows, seed):x16}\"");
    }

    /// <summary>The <c>Cache-Control</c> of an answer of buckets before <paramref name="to"/>, given W and the API's cache TTL.</summary>
    public static string CacheControl(DateTime to, DateTime? watermark, TimeSpan cacheTtl) =>
        watermark is { } w && to <= w && cacheTtl >= TimeSpan.FromSeconds(1)
            ? string.Create(CultureInfo.InvariantCulture, $"private, max-age={(long)cacheTtl.TotalSeconds}")
            : "private, no-cache";

    /// <summary>Whether an <c>If-None-Match</c> header names <paramref name="etag"/> (weak comparison, as RFC 9110 asks for it) or is <c>*</c>.</summary>
    public static bool Matches(StringValues ifNoneMatch, string etag)
    {
        var opaque = Opaque(etag);
        foreach (var header in ifNoneMatch)
        {
            foreach (var candidate in (header ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (candidate == "*" || Opaque(candidate).SequenceEqual(opaque))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static ReadOnlySpan<char> Opaque(string tag) => tag.StartsWith("W/", StringComparison.Ordinal) ? tag.AsSpan(2) : tag.AsSpan();
}
