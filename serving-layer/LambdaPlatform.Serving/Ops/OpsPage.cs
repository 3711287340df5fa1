using System.Collections.Frozen;
using System.Globalization;
using System.Security.Cryptography;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Serving.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Serving.Ops;

/// <summary>
/// The operations page at <c>/</c> and what it reads besides the views API: <c>GET /v1/ops</c> (ingest and dead-letter rates,
/// the dead-letter topic's top reasons and newest samples — from the pipeline state in ClickHouse, so every API instance shows
/// the same — and this instance's API latency percentiles).
/// </summary>
/// <remarks>
/// The page is static (HTML, script, style and the chart library, embedded in this assembly at build time, served under
/// <c>/ops/</c>) and reads everything through the API with the key the user types in, when keys are configured: the page
/// itself is open (it holds no data), every API call it makes needs the key, and it shows nothing secret.
/// </remarks>
public static class OpsPage
{
    /// <summary>Window of the ingest and dead-letter rates: 60 s.</summary>
    public static readonly TimeSpan RateWindow = TimeSpan.FromSeconds(60);

    /// <summary>Window of the dead-letter top reasons: 1 hour.</summary>
    public static readonly TimeSpan ReasonWindow = TimeSpan.FromHours(1);

    /// <summary>Window and step of the ingest chart: 15 minutes in 10-second steps.</summary>
    public static readonly (TimeSpan Window, TimeSpan Step) Series = (TimeSpan.FromMinutes(15), TimeSpan.FromSeconds(10));

    private static readonly FrozenDictionary<string, (byte[] Body, string ContentType, string ETag)> Assets = LoadAssets();

    /// <summary>Maps <c>/</c>, <c>/ops/{file}</c> (open) and <c>GET /v1/ops</c> (needs a key when keys are configured).</summary>
    public static IEndpointRouteBuilder MapOpsPage(this IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        routes.MapGet("/", (HttpContext context) => Asset(context, "index.html")).AllowAnonymous().ExcludeFromDescription();
        routes.MapGet("/ops/{**file}", (string file, HttpContext context) => Asset(context, file)).AllowAnonymous().ExcludeFromDescription();

        // Whether the page must ask for a key before its first call (public: any 401 says the same).
        routes.MapGet("/ops/auth", (ApiKeys keys, HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(new { keysRequired = !keys.IsEmpty });
        }).AllowAnonymous().ExcludeFromDescription();
        routes.MapGet("/v1/ops", GetAsync)
            .WithName("Operations")
            .WithSummary("What the operations page shows besides the views: ingest and dead-letter rates, the dead-letter topic's top reasons and samples, the API's latency")
            .WithDescription("Rates over the last 60 s and a 15-minute series in 10-second steps (records read by the speed layer and sent to events.dlq, per flush, from lambda_ingest); "
                + "the rules and paths that sent the most records to events.dlq in the last hour and the newest samples (values shortened, from lambda_dead_letters); "
                + "p50/p95/p99/p99.9 of this instance's /v1 requests over the last 5 minutes.");
        return routes;
    }

    /// <summary>Whether an embedded asset of the page exists (e.g. <c>index.html</c>, <c>vendor/uPlot.iife.min.js</c>).</summary>
    public static bool HasAsset(string name) => Assets.ContainsKey(name);

    private static IResult Asset(HttpContext context, string name)
    {
        if (!Assets.TryGetValue(name, out var asset))
        {
            return Results.NotFound();
        }

        var headers = context.Response.Headers;
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        if (name == "index.html")
        {
            // Scripts and styles only from this server; API calls only to it.
            headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
            headers["Referrer-Policy"] = "no-referrer";
        }

        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        headers.ETag = asset.ETag;
        return Results.Bytes(asset.Body, asset.ContentType);
    }

    private static async Task<IResult> GetAsync(HttpContext context, IServiceProvider services, CancellationToken cancellationToken)
    {
        var store = new ServingStore(ServingApi.ServingClickHouse(services));
        var latency = services.GetRequiredService<ApiLatency>().Read();
        try
        {
            var rates = await store.ReadIngestAsync(RateWindow, cancellationToken);
            var series = await store.ReadIngestSeriesAsync(Series.Window, Series.Step, cancellationToken);
            var top = await store.ReadTopDeadLettersAsync(ReasonWindow, 5, cancellationToken);
            var samples = await store.ReadDeadLetterSamplesAsync(5, cancellationToken);
            return Results.Json(new
            {
                generatedAt = Iso(rates.To),
                instance = ServingStore.ThisInstance,
                ingest = new
                {
                    windowSeconds = (int)RateWindow.TotalSeconds,
                    records = rates.Records,
                    deadLetters = rates.DeadLetters,
                    recordsPerSecond = Math.Round(rates.RecordsPerSecond, 1),
                    deadLettersPerSecond = Math.Round(rates.DeadLettersPerSecond, 2),
                    stepSeconds = (int)Series.Step.TotalSeconds,
                    series = series.Select(s => new { at = Iso(s.At), records = s.Records, deadLetters = s.DeadLetters }),
                },
                deadLetters = new
                {
                    windowSeconds = (int)ReasonWindow.TotalSeconds,
                    topReasons = top.Select(t => new { rule = t.Rule, path = t.Path, records = t.Records, example = t.Reason }),
                    samples = samples.Select(s => new
                    {
                        flushedAt = Iso(s.FlushedAt), rule = s.Sample.Rule, path = s.Sample.Path, reason = s.Sample.Reason, topic = s.Sample.Topic,
                        partition = s.Sample.Partition, offset = s.Sample.Offset, value = s.Sample.Value,
                    }),
                },
                api = new
                {
                    windowSeconds = (int)latency.Window.TotalSeconds,
                    requests = latency.Requests,
                    p50Ms = Ms(latency.P50),
                    p95Ms = Ms(latency.P95),
                    p99Ms = Ms(latency.P99),
                    p999Ms = Ms(latency.P999),
                },
                links = new { docs = "/docs", hangfire = "/hangfire" },
            });
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(title: e.IsTransient ? "ClickHouse is unavailable" : "the query failed", detail: e.Message.Split('\n')[0],
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError);
        }
    }

    private static double? Ms(TimeSpan? value) => value is { } v ? Math.Round(v.TotalMilliseconds, 2) : null;

    private static string Iso(DateTime value) => value.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static FrozenDictionary<string, (byte[] Body, string ContentType, string ETag)> LoadAssets()
    {
        var assembly = typeof(OpsPage).Assembly;
        var result = new Dictionary<string, (byte[], string, string)>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("ops/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var body = buffer.ToArray();
            var name = resource["ops/".Length..];
            var type = Path.GetExtension(name) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "text/plain; charset=utf-8",
            };
            result[name] = (body, type, "\"" + Convert.ToHexStringLower(SHA256.HashData(body))[..16] + "\"");
        }

        return result.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
