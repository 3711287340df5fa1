using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;
using LambdaPlatform.Serving.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LambdaPlatform.Serving.Views;

/// <summary>Settings of the views API.</summary>
public sealed record ViewsApiOptions
{
    /// <summary>How long an identical request is answered from memory. Default 2 s; zero turns the cache off.</summary>
    public TimeSpan CacheTtl { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a view's watermark and newest real-time bucket are reused between requests. Default 1 s.</summary>
    public TimeSpan StatusTtl { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Most cached answers kept. Default 10,000.</summary>
    public int MaxCachedAnswers { get; init; } = 10_000;
}

/// <summary>
/// <c>GET /v1/views</c> and <c>GET /v1/views/{view}</c>: the merged answer of a view for real-time API
/// consumers, as JSON, cached briefly; a cached answer is dropped as soon as a real-time flush touches its
/// range or the view's watermark moves, so it is never staler than the TTL.
/// </summary>
public sealed class ViewsEndpoints(IClickHouse clickHouse, IReadOnlyList<ViewDefinition> views, ViewFreshness freshness, ViewsApiOptions options, TimeProvider clock)
{
    private readonly Dictionary<string, ViewSql> _views = views.ToDictionary(v => v.Name, v => new ViewSql(v), StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (byte[] Body, DateTime At)> _answers = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (ViewStatus Status, DateTime At)> _status = new(StringComparer.Ordinal);

    /// <summary>Maps the endpoints.</summary>
    public void Map(IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        routes.MapGet("/v1/views", ListAsync)
            .WithName("ListViews")
            .WithSummary("Every view: dimensions, measures, bucket, watermark W and freshness");
        routes.MapGet("/v1/views/{view}", GetAsync)
            .WithName("GetView")
            .WithSummary("Merged rows of a view for buckets in [from, to): batch below W, real time at or above W")
            .WithDescription("Query parameters: from, to (ISO-8601 UTC; default the last hour), granularity (the view's bucket or coarser; only count, sum, min and max roll up), measures (comma list), and one equality filter per dimension name.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private async Task<IResult> ListAsync(CancellationToken cancellationToken)
    {
        var list = new List<object>();
        foreach (var sql in _views.Values)
        {
            var status = await StatusAsync(sql, cancellationToken);
            var v = sql.View;
            list.Add(new
            {
                name = v.Name,
                description = v.Description,
                events = v.EventTypes ?? ["*"],
                bucket = v.Bucket.Text,
                allowedLateness = v.AllowedLateness.ToString("c", CultureInfo.InvariantCulture),
                dimensions = v.Dimensions.Select(d => new { name = d.Name, path = d.Path.Text }),
                measures = v.Measures.Select(m => new { name = m.Name, kind = m.Kind, definition = m.Definition, path = m.Path?.Text, rollsUp = m.RollsUp, realtimeRelativeError = m.RealtimeRelativeError }),
                watermark = Iso(status.Watermark),
                newestRealtimeBucket = Iso(status.NewestRealtimeBucket),
                speedLagSeconds = freshness.SpeedLagSeconds,
            });
        }

        return Results.Json(new { views = list });
    }

    private async Task<IResult> GetAsync(string view, HttpContext context, CancellationToken cancellationToken)
    {
        if (view.Length > 64 || !_views.TryGetValue(view, out var sql))
        {
            return Results.Problem(title: "unknown view", detail: $"there is no view '{(view.Length > 64 ? view[..64] + "…" : view)}' (known: {string.Join(", ", _views.Keys)})",
                statusCode: StatusCodes.Status404NotFound, extensions: new Dictionary<string, object?> { ["field"] = "view" });
        }

        var now = clock.GetUtcNow().UtcDateTime;
        var (query, field, problem) = ViewQuery.Parse(sql, context.Request.Query, now);
        if (query is null)
        {
            return Results.Problem(title: $"invalid '{field}'", detail: problem, statusCode: StatusCodes.Status400BadRequest,
                extensions: new Dictionary<string, object?> { ["field"] = field });
        }

        var key = query.CacheKey;
        if (options.CacheTtl > TimeSpan.Zero && _answers.TryGetValue(key, out var cached)
            && now - cached.At < options.CacheTtl && !freshness.ChangedSince(view, cached.At, query.From, query.To))
        {
            return Results.Bytes(cached.Body, "application/json");
        }

        byte[] body;
        try
        {
            body = await AnswerAsync(query, cancellationToken);
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(title: e.IsTransient ? "ClickHouse is unavailable" : "the query failed", detail: e.Message.Split('\n')[0],
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError);
        }

        if (options.CacheTtl > TimeSpan.Zero)
        {
            if (_answers.Count >= options.MaxCachedAnswers)
            {
                _answers.Clear();
            }

            _answers[key] = (body, now);
        }

        return Results.Bytes(body, "application/json");
    }

    /// <summary>Runs the query and renders the JSON answer.</summary>
    private async Task<byte[]> AnswerAsync(ViewQuery query, CancellationToken cancellationToken)
    {
        var status = await StatusAsync(query.View, cancellationToken);
        var definition = query.View.View;
        var output = new ArrayBufferWriter<byte>(4096);
        await using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            writer.WriteString("view", definition.Name);
            WriteTime(writer, "watermark", status.Watermark);
            WriteTime(writer, "newestRealtimeBucket", status.NewestRealtimeBucket);
            if (freshness.SpeedLagSeconds is { } lag)
            {
                writer.WriteNumber("speedLagSeconds", Math.Round(lag, 3));
            }
            else
            {
                writer.WriteNull("speedLagSeconds");
            }

            writer.WriteString("granularity", query.Granularity.Text);
            if (query.Omitted.Count > 0)
            {
                writer.WriteStartArray("omitted");
                foreach (var o in query.Omitted)
                {
                    writer.WriteStringValue(o);
                }

                writer.WriteEndArray();
            }

            writer.WriteStartArray("rows");
            await using var stream = await clickHouse.QueryAsync(query.ToSql(), "TabSeparated", cancellationToken);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken) is { Length: > 0 } line)
            {
                var fields = line.Split('\t');
                writer.WriteStartObject();
                writer.WriteString("bucket", DateTime.UnixEpoch.AddSeconds(long.Parse(fields[0], CultureInfo.InvariantCulture)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
                var i = 1;
                foreach (var d in definition.Dimensions)
                {
                    writer.WriteString(d.Name, ClickHouseText.Unescape(fields[i++]));
                }

                foreach (var m in query.Measures)
                {
                    var width = query.RollsUp ? 1 : m.ServedColumns.Count;
                    m.WriteJson(writer, new ArraySegment<string>(fields, i, width));
                    i += width;
                }

                writer.WriteString("side", fields[i]);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return output.WrittenSpan.ToArray();
    }

    private async Task<ViewStatus> StatusAsync(ViewSql sql, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        if (_status.TryGetValue(sql.View.Name, out var cached) && now - cached.At < options.StatusTtl
            && !freshness.ChangedSince(sql.View.Name, cached.At, DateTime.MinValue, DateTime.MaxValue))
        {
            return cached.Status;
        }

        var (watermark, newest) = await new ServingStore(clickHouse).ReadFreshnessAsync(sql, cancellationToken);
        var status = new ViewStatus(watermark, newest);
        _status[sql.View.Name] = (status, now);
        return status;
    }

    private static void WriteTime(Utf8JsonWriter writer, string name, DateTime? value)
    {
        if (value is { } v)
        {
            writer.WriteString(name, v.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static string? Iso(DateTime? value) => value?.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private sealed record ViewStatus(DateTime? Watermark, DateTime? NewestRealtimeBucket);
}
