using System.Globalization;
using System.Text.RegularExpressions;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;
using Microsoft.AspNetCore.Http;

namespace LambdaPlatform.Serving.Views;

/// <summary>
/// A validated request for a view's merged rows. Built only from the view definition and checked
/// parameters: names come from the definition, values are matched against an allow-list and escaped,
/// ranges are capped, so the SQL it produces can only read.
/// </summary>
public sealed partial class ViewQuery
{
    /// <summary>Most buckets one request may cover (range / granularity).</summary>
    public const int MaxBuckets = 100_000;

    private static readonly string[] Granularities = ["1m", "5m", "15m", "1h", "6h", "1d"];

    private ViewQuery(ViewSql view, DateTime from, DateTime to, ViewBucket granularity, IReadOnlyList<(Dimension Dimension, string Value)> filters, IReadOnlyList<Measure> measures, IReadOnlyList<string> omitted)
    {
        View = view;
        From = from;
        To = to;
        Granularity = granularity;
        Filters = filters;
        Measures = measures;
        Omitted = omitted;
    }

    /// <summary>The view's SQL.</summary>
    public ViewSql View { get; }

    /// <summary>Start of the range (inclusive, UTC).</summary>
    public DateTime From { get; }

    /// <summary>End of the range (exclusive, UTC).</summary>
    public DateTime To { get; }

    /// <summary>Bucket size of the answer (the view's own, or coarser).</summary>
    public ViewBucket Granularity { get; }

    /// <summary>Dimension equality filters.</summary>
    public IReadOnlyList<(Dimension Dimension, string Value)> Filters { get; }

    /// <summary>Measures in the answer.</summary>
    public IReadOnlyList<Measure> Measures { get; }

    /// <summary>Measures left out and why (non-additive measures at a coarser granularity).</summary>
    public IReadOnlyList<string> Omitted { get; }

    /// <summary>True when the answer rolls the view's buckets up to a coarser granularity.</summary>
    public bool RollsUp => Granularity.Size != View.View.Bucket.Size;

    /// <summary>A canonical text of the request, for caching.</summary>
    public string CacheKey => string.Join('|', View.View.Name, From.Ticks, To.Ticks, Granularity.Text,
        string.Join(',', Filters.Select(f => f.Dimension.Name + "=" + f.Value)), string.Join(',', Measures.Select(m => m.Name)));

    /// <summary>Parses and checks the query string; returns the query, or the name of the bad field and why.</summary>
    public static (ViewQuery? Query, string? Field, string? Problem) Parse(ViewSql view, IQueryCollection query, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(query);
        var definition = view.View;
        var known = new HashSet<string>(StringComparer.Ordinal) { "from", "to", "granularity", "measures" };
        foreach (var d in definition.Dimensions)
        {
            known.Add(d.Name);
        }

        foreach (var key in query.Keys)
        {
            if (!known.Contains(key))
            {
                return Fail(key, $"unknown parameter '{Shorten(key)}' (allowed: {string.Join(", ", known)})");
            }

            if (query[key].Count > 1)
            {
                return Fail(key, "give the parameter once");
            }
        }

        var granularity = definition.Bucket;
        if (query.TryGetValue("granularity", out var g))
        {
            var text = g.ToString();
            if (!Granularities.Contains(text, StringComparer.Ordinal) || ViewLoader.ParseSpan(text) is not { } span)
            {
                return Fail("granularity", $"'{Shorten(text)}' is not a granularity (one of {string.Join(", ", Granularities)})");
            }

            if (span < definition.Bucket.Size || span.Ticks % definition.Bucket.Size.Ticks != 0)
            {
                return Fail("granularity", $"{text} is finer than, or not a multiple of, the view's {definition.Bucket.Text} buckets");
            }

            granularity = new ViewBucket(text, span);
        }

        var to = now;
        if (query.TryGetValue("to", out var toText) && !TryParseTime(toText.ToString(), out to))
        {
            return Fail("to", $"'{Shorten(toText.ToString())}' is not an ISO-8601 UTC time (e.g. 2026-11-28T12:00:00Z)");
        }

        var from = to - TimeSpan.FromHours(1);
        if (query.TryGetValue("from", out var fromText) && !TryParseTime(fromText.ToString(), out from))
        {
            return Fail("from", $"'{Shorten(fromText.ToString())}' is not an ISO-8601 UTC time (e.g. 2026-11-28T11:00:00Z)");
        }

        if (from >= to)
        {
            return Fail("from", "from must be before to (the range is [from, to))");
        }

        if ((to - from).Ticks / granularity.Size.Ticks > MaxBuckets)
        {
            return Fail("to", $"the range covers more than {MaxBuckets:N0} buckets of {granularity.Text}; narrow it or use a coarser granularity");
        }

        var filters = new List<(Dimension, string)>();
        foreach (var d in definition.Dimensions)
        {
            if (query.TryGetValue(d.Name, out var value))
            {
                var text = value.ToString();
                if (!DimensionValueRegex().IsMatch(text))
                {
                    return Fail(d.Name, "a dimension value may hold letters, digits, spaces and . _ : / @ + - only, up to 128 characters");
                }

                filters.Add((d, text));
            }
        }

        var measures = definition.Measures.ToList();
        var explicitMeasures = query.TryGetValue("measures", out var measureText);
        if (explicitMeasures)
        {
            measures = [];
            foreach (var name in measureText.ToString().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var m = definition.Measures.FirstOrDefault(x => x.Name == name);
                if (m is null)
                {
                    return Fail("measures", $"unknown measure '{Shorten(name)}' (known: {string.Join(", ", definition.Measures.Select(x => x.Name))})");
                }

                measures.Add(m);
            }

            if (measures.Count == 0)
            {
                return Fail("measures", "name at least one measure");
            }
        }

        var omitted = new List<string>();
        if (granularity.Size != definition.Bucket.Size)
        {
            foreach (var m in measures.Where(m => !m.RollsUp).ToList())
            {
                if (explicitMeasures)
                {
                    return Fail("measures", $"'{m.Name}' ({m.Kind}) cannot be rolled up from {definition.Bucket.Text} to {granularity.Text}: distinct counts, quantiles and top-k of buckets do not add up; ask for granularity={definition.Bucket.Text}");
                }

                measures.Remove(m);
                omitted.Add($"{m.Name}: {m.Kind} does not roll up, so it is served only at the view's own granularity ({definition.Bucket.Text})");
            }

            if (measures.Count == 0)
            {
                return Fail("granularity", $"none of the measures roll up; ask for granularity={definition.Bucket.Text}");
            }
        }

        return (new ViewQuery(view, from, to, granularity, filters, measures, omitted), null, null);
    }

    /// <summary>
    /// The SQL for this query against the merged view; columns: bucket (Unix seconds), dimensions, each measure's
    /// served columns (<see cref="Measure.ServedColumns"/>, rolled up by <see cref="Measure.RollupSql"/> at a coarser
    /// granularity), side.
    /// </summary>
    public string ToSql()
    {
        var definition = View.View;
        var dims = definition.Dimensions.Select(d => ViewSql.Quote(d.Name)).ToList();
        var where = new List<string>
        {
            $"bucket >= toDateTime({ToUnix(From)}, 'UTC')",
            $"bucket < toDateTime({ToUnix(To)}, 'UTC')",
        };
        where.AddRange(Filters.Select(f => $"{ViewSql.Quote(f.Dimension.Name)} = {ViewSql.Literal(f.Value)}"));
        var whereText = string.Join(" AND ", where);

        if (!RollsUp)
        {
            var columns = dims.Prepend("toUnixTimestamp(bucket) AS b").Concat(Measures.SelectMany(m => m.ServedColumns).Select(c => ViewSql.Quote(c.Name))).Append("side");
            return $"SELECT {string.Join(", ", columns)} FROM {View.MergedView} WHERE {whereText} ORDER BY b{string.Concat(dims.Select(d => ", " + d))}";
        }

        var bucket = $"toUnixTimestamp({new ViewSql(definition with { Bucket = Granularity }).BucketExpression("bucket")})";
        var aggregates = Measures.Select(m => $"{m.RollupSql(ViewSql.Quote(m.Name))} AS {ViewSql.Quote(m.Name)}");
        // A rolled-up bucket may mix batch and real-time buckets; say so.
        var side = "if(uniqExact(side) > 1, 'mixed', any(side)) AS side";
        var select = dims.Prepend($"{bucket} AS b").Concat(aggregates).Append(side);
        var groupBy = string.Join(", ", dims.Prepend("b"));
        return $"SELECT {string.Join(", ", select)} FROM {View.MergedView} WHERE {whereText} GROUP BY {groupBy} ORDER BY {groupBy}";
    }

    /// <summary>Parses an ISO-8601 time with an offset (or Z) to UTC.</summary>
    public static bool TryParseTime(string text, out DateTime utc)
    {
        utc = default;
        if (text.Length is < 10 or > 40
            || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed)
            || parsed.Year is < 1971 or > 2200)
        {
            return false;
        }

        utc = parsed.UtcDateTime;
        return true;
    }

    private static long ToUnix(DateTime time) => (long)Math.Floor((time - DateTime.UnixEpoch).TotalSeconds);

    private static (ViewQuery?, string?, string?) Fail(string field, string problem) => (null, Shorten(field), problem);

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";

    [GeneratedRegex(@"^[\p{L}\p{N} ._:/@+\-]{1,128}$")]
    private static partial Regex DimensionValueRegex();
}
