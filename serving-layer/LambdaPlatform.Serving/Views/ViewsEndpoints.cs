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
    /// <summary>
    /// Longest time an identical request is answered from memory. Default 60 s; zero turns the cache off. A cached answer
    /// is dropped earlier as soon as a change marker of its range is read (see <see cref="PipelineStateWatcher"/>), so this
    /// only bounds changes made behind the platform's back (e.g. by hand in SQL).
    /// </summary>
    public TimeSpan CacheTtl { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest time a view's watermark and newest real-time bucket are reused between requests (also dropped by any marker of the view). Default 60 s.</summary>
    public TimeSpan StatusTtl { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Most cached answers kept. Default 10,000.</summary>
    public int MaxCachedAnswers { get; init; } = 10_000;

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    /// <returns>This instance.</returns>
    public ViewsApiOptions Validate()
    {
        if (CacheTtl < TimeSpan.Zero || CacheTtl > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(CacheTtl), CacheTtl, "ViewsApiOptions.CacheTtl must be between 0 and 1 hour");
        }

        if (StatusTtl < TimeSpan.Zero || StatusTtl > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(StatusTtl), StatusTtl, "ViewsApiOptions.StatusTtl must be between 0 and 1 hour");
        }

        if (MaxCachedAnswers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxCachedAnswers), MaxCachedAnswers, "ViewsApiOptions.MaxCachedAnswers must be positive");
        }

        return this;
    }
}

/// <summary>
/// <c>GET /v1/views</c> and <c>GET /v1/views/{view}</c>: the merged answer of a view for real-time API consumers, as JSON.
/// The rows are cached; a cached answer is dropped as soon as this instance reads a change marker of its range (a flush, a
/// batch swap, a move of W, by any process: <see cref="PipelineStateWatcher"/>). Freshness (W, newest real-time bucket,
/// <c>speedLagSeconds</c>, per-partition Kafka lag) is rendered for every request from the pipeline state in ClickHouse.
/// The response header <c>X-Lambda-Cache</c> says <c>hit</c> or <c>miss</c>; HTTP caching: <see cref="HttpCaching"/> (a weak
/// <c>ETag</c> with <c>304 Not Modified</c>, <c>Cache-Control</c> from freshness). Rows and freshness: <see cref="AnswerCache{T}"/>.
/// </summary>
public sealed class ViewsEndpoints(IClickHouse clickHouse, IReadOnlyList<ViewDefinition> views, PipelineStateWatcher pipeline, ViewsApiOptions options, TimeProvider clock)
{
    /// <summary>The response header that says whether the rows came from the cache: <c>X-Lambda-Cache</c>.</summary>
    public const string CacheHeader = "X-Lambda-Cache";

    /// <summary>The response header of a <c>304 Not Modified</c> that carries the current <c>speedLagSeconds</c>: <c>X-Lambda-Speed-Lag-Seconds</c>.</summary>
    public const string SpeedLagHeader = "X-Lambda-Speed-Lag-Seconds";

    /// <summary>The cache of answers' rows (single flight, refresh ahead).</summary>
    public AnswerCache<byte[]> Cache => _cache;

    private readonly Dictionary<string, ViewSql> _views = views.ToDictionary(v => v.Name, v => new ViewSql(v), StringComparer.Ordinal);
    private readonly AnswerCache<byte[]> _cache = new(options.CacheTtl, options.MaxCachedAnswers, clock);
    private readonly AnswerCache<ViewStatus> _status = new(options.StatusTtl, int.MaxValue, clock);

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
        routes.MapGet("/v1/pipeline", PipelineAsync)
            .WithName("Pipeline")
            .WithSummary("The pipeline's state in ClickHouse: speed-layer progress per partition, archiver progress, recent batch runs");
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
                speedLagSeconds = Lag(),
            });
        }

        return Results.Json(new { views = list, speedPartitions = pipeline.Speed.Partitions.Select(PartitionJson) });
    }

    private async Task<IResult> PipelineAsync(CancellationToken cancellationToken)
    {
        try
        {
            var store = new ServingStore(clickHouse);
            var speed = await store.ReadSpeedProgressAsync(null, cancellationToken);
            var archive = await store.ReadArchiveProgressAsync(cancellationToken);
            var runs = await store.ReadBatchRunsAsync(null, 50, cancellationToken);
            return Results.Json(new
            {
                speedLagSeconds = Lag(),
                speed = speed.Select(p => new { consumerGroup = p.ConsumerGroup, topic = p.Topic, partition = p.Partition, nextOffset = p.NextOffset, kafkaLag = p.KafkaLag, newestEventTime = IsoMs(p.NewestEventTime), flushedAt = IsoMs(p.FlushedAt), instance = p.Instance }),
                archive = archive.Select(a => new { partition = a.Partition, archivedThrough = a.ArchivedThrough, recordedAt = IsoMs(a.RecordedAt), instance = a.Instance }),
                batchRuns = runs.Select(r => new { view = r.View, day = r.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), rowsIn = r.RowsIn, rowsOut = r.RowsOut, durationMs = (long)r.Duration.TotalMilliseconds, watermark = Iso(r.Watermark), watermarkHeld = r.WatermarkHeld, finishedAt = IsoMs(r.FinishedAt), instance = r.Instance }),
            });
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(title: e.IsTransient ? "ClickHouse is unavailable" : "the query failed", detail: e.Message.Split('\n')[0],
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError);
        }
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

        Cached<byte[]> answer;
        ViewStatus status;
        bool hit;
        try
        {
            status = await StatusAsync(query.View, cancellationToken);
            (answer, hit) = await _cache.GetAsync(query.CacheKey, since => pipeline.ChangedSince(view, since, query.From, query.To),
                ct => RowsAsync(query, ct), cancellationToken);
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(title: e.IsTransient ? "ClickHouse is unavailable" : "the query failed", detail: e.Message.Split('\n')[0],
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError);
        }

        var headers = context.Response.Headers;
        headers[CacheHeader] = hit ? "hit" : "miss";
        var etag = HttpCaching.ETag(answer.Value, status.Watermark, status.NewestRealtimeBucket);
        headers.ETag = etag;
        headers.CacheControl = HttpCaching.CacheControl(query.To, status.Watermark, options.CacheTtl);
        if (HttpCaching.Matches(context.Request.Headers.IfNoneMatch, etag))
        {
            if (Lag() is { } lag)
            {
                headers[SpeedLagHeader] = lag.ToString(CultureInfo.InvariantCulture);
            }

            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return Results.Bytes(Envelope(query, status, answer.Value), "application/json");
    }

    /// <summary>The answer: freshness as of now around the (possibly cached) rows.</summary>
    private byte[] Envelope(ViewQuery query, ViewStatus status, byte[] rows)
    {
        var output = new ArrayBufferWriter<byte>(rows.Length + 512);
        using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            writer.WriteString("view", query.View.View.Name);
            WriteTime(writer, "watermark", status.Watermark);
            WriteTime(writer, "newestRealtimeBucket", status.NewestRealtimeBucket);
            if (Lag() is { } lag)
            {
                writer.WriteNumber("speedLagSeconds", lag);
            }
            else
            {
                writer.WriteNull("speedLagSeconds");
            }

            writer.WriteStartArray("kafkaLag");
            foreach (var p in pipeline.Speed.Partitions)
            {
                writer.WriteStartObject();
                writer.WriteNumber("partition", p.Partition);
                if (p.KafkaLag is { } behind)
                {
                    writer.WriteNumber("messages", behind);
                }
                else
                {
                    writer.WriteNull("messages");
                }

                writer.WriteString("asOf", IsoMs(p.FlushedAt));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
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

            writer.WritePropertyName("rows");
            writer.WriteRawValue(rows, skipInputValidation: true);
            writer.WriteEndObject();
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>Runs the query and renders the rows as a JSON array.</summary>
    private async Task<byte[]> RowsAsync(ViewQuery query, CancellationToken cancellationToken)
    {
        var definition = query.View.View;
        var output = new ArrayBufferWriter<byte>(4096);
        await using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartArray();
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
        }

        return output.WrittenSpan.ToArray();
    }

    private async Task<ViewStatus> StatusAsync(ViewSql sql, CancellationToken cancellationToken)
    {
        var (status, _) = await _status.GetAsync(sql.View.Name, since => pipeline.ChangedSince(sql.View.Name, since, DateTime.MinValue, DateTime.MaxValue),
            async ct =>
            {
                var (watermark, newest) = await new ServingStore(clickHouse).ReadFreshnessAsync(sql, ct);
                return new ViewStatus(watermark, newest);
            }, cancellationToken);
        return status.Value;
    }

    private double? Lag() => pipeline.SpeedLagSeconds is { } lag ? Math.Round(lag, 3) : null;

    private static object PartitionJson(SpeedPartitionProgress p) =>
        new { partition = p.Partition, nextOffset = p.NextOffset, kafkaLag = p.KafkaLag, newestEventTime = IsoMs(p.NewestEventTime), flushedAt = IsoMs(p.FlushedAt), instance = p.Instance };

    private static string? IsoMs(DateTime? value) => value?.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

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

    internal sealed record ViewStatus(DateTime? Watermark, DateTime? NewestRealtimeBucket);
}
