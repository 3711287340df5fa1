using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using LambdaPlatform.ClickHouse;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;

namespace LambdaPlatform.Serving;

/// <summary>Body of <c>POST /v1/sql</c>.</summary>
/// <param name="Sql">One read-only statement, without a FORMAT clause.</param>
/// <param name="Format">ClickHouse output format; default <c>TabSeparatedWithNames</c>.</param>
public sealed record SqlRequest([property: JsonPropertyName("sql")] string? Sql, [property: JsonPropertyName("format")] string? Format);

/// <summary>
/// <c>POST /v1/sql</c>: read-only SQL for analysts (what <c>lambda sql</c> calls). Two kinds of body:
/// <list type="bullet">
/// <item><c>application/json</c>: <c>{"sql": "SELECT …", "format": "…"}</c> (default format <c>TabSeparatedWithNames</c>);</item>
/// <item><c>text/plain</c> or <c>application/sql</c>: the statement itself, as ClickHouse's HTTP interface takes it, with the
/// format from the query parameter <c>default_format</c> (or <c>format</c>), or a trailing <c>FORMAT Name</c> clause, else
/// ClickHouse's own default <c>TabSeparated</c>.</item>
/// </list>
/// The result streams back in the requested ClickHouse format. A refused or failing query gets a problem+json body naming
/// the field and the ClickHouse error code; a body of another media type gets 415 with a problem body saying what is accepted.
/// </summary>
public static partial class SqlEndpoint
{
    /// <summary>Default output format of a JSON body.</summary>
    public const string DefaultFormat = "TabSeparatedWithNames";

    /// <summary>Default output format of a raw SQL body: ClickHouse's HTTP default, <c>TabSeparated</c>.</summary>
    public const string RawDefaultFormat = "TabSeparated";

    /// <summary>The media types a body may have.</summary>
    public static IReadOnlyList<string> AcceptedMediaTypes { get; } = ["application/json", "text/plain", "application/sql"];

    private static readonly HashSet<string> Formats = new(StringComparer.Ordinal)
    {
        "TabSeparated", "TabSeparatedWithNames", "TabSeparatedWithNamesAndTypes", "TSV", "TSVWithNames", "CSV", "CSVWithNames",
        "JSON", "JSONCompact", "JSONEachRow", "Pretty", "PrettyCompact", "PrettyCompactMonoBlock", "PrettySpace", "Vertical", "Values",
    };

    /// <summary>Maps the endpoint onto <paramref name="routes"/>; its body limit is <see cref="HttpLimits.MaxSqlBodyBytes"/> of the container's <see cref="HttpLimits"/>.</summary>
    public static IEndpointRouteBuilder MapSqlEndpoint(this IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var limits = routes.ServiceProvider.GetService<HttpLimits>() ?? new HttpLimits();

        // No Accepts metadata: routing would answer another media type with a bare 415; the handler says what it accepts.
        routes.MapPost("/v1/sql", HandleAsync)
            .WithName("Sql")
            .WithSummary("Run one read-only SQL statement against the serving ClickHouse")
            .WithDescription("Body: application/json {\"sql\": \"SELECT ...\", \"format\": \"...\"}, or the statement itself as text/plain or application/sql with the format in the query parameter default_format (or format) or a trailing FORMAT clause (default TabSeparated, as ClickHouse's HTTP interface).")
            .WithMetadata(new BodySizeLimit(limits.MaxSqlBodyBytes))
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
                    {
                        ["application/json"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.Object } },
                        ["text/plain"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
                        ["application/sql"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
                    },
                };
                return Task.CompletedTask;
            })
            .Produces(StatusCodes.Status200OK, contentType: "text/plain")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return routes;
    }

    private static async Task<IResult> HandleAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var clickHouse = ServingApi.ServingClickHouse(context.RequestServices);

        // The body is read here rather than bound, so that a body over the limit (also a chunked one, which Kestrel
        // cuts off while it is read) gets a 413 that says so.
        var (request, problem) = await ReadRequestAsync(context, cancellationToken);
        if (problem is not null)
        {
            return problem;
        }

        if (request is null)
        {
            return Problem("body", "send the statement as the body (text/plain or application/sql), or a JSON body {\"sql\": \"SELECT ...\", \"format\": \"TabSeparatedWithNames\"}");
        }

        var format = string.IsNullOrWhiteSpace(request.Format) ? DefaultFormat : request.Format;
        if (!Formats.Contains(format))
        {
            return Problem("format", $"unsupported format '{(format.Length > 64 ? format[..64] + "…" : format)}' (supported: {string.Join(", ", Formats.Order(StringComparer.Ordinal))})");
        }

        if (ReadOnlySql.Check(request.Sql) is { } refusal)
        {
            return Problem("sql", refusal);
        }

        Stream result;
        try
        {
            result = await clickHouse.QueryAsync(ReadOnlySql.Enforce(request.Sql!), format, cancellationToken);
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(
                title: e.IsTransient ? "ClickHouse is unavailable" : "the query failed",
                detail: e.Message,
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status400BadRequest,
                extensions: new Dictionary<string, object?> { ["field"] = "sql", ["clickHouseErrorCode"] = e.ErrorCode });
        }

        return Results.Stream(result, "text/plain; charset=utf-8");
    }

    private static async Task<(SqlRequest? Request, IResult? Problem)> ReadRequestAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var http = context.Request;
        if (http.ContentLength == 0)
        {
            return (null, null);
        }

        var raw = IsRawSql(http.ContentType);
        if (!raw && !http.HasJsonContentType())
        {
            return (null, Results.Problem(title: "unsupported media type",
                detail: $"send the statement as text/plain or application/sql (format in ?default_format=), or a JSON body {{\"sql\": ..., \"format\": ...}} as application/json; not {(string.IsNullOrEmpty(http.ContentType) ? "a body without Content-Type" : Shorten(http.ContentType))}",
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                extensions: new Dictionary<string, object?> { ["field"] = "body", ["accepted"] = AcceptedMediaTypes }));
        }

        try
        {
            if (!raw)
            {
                return (await http.ReadFromJsonAsync<SqlRequest>(cancellationToken), null);
            }

            using var reader = new StreamReader(http.Body, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true));
            var text = await reader.ReadToEndAsync(cancellationToken);
            if (string.IsNullOrWhiteSpace(text))
            {
                return (null, null);
            }

            // Like ClickHouse: a trailing FORMAT clause wins over the parameter, which wins over the default.
            var format = http.Query.TryGetValue("default_format", out var given) || http.Query.TryGetValue("format", out given) ? given.ToString() : RawDefaultFormat;
            if (TrailingFormat().Match(text) is { Success: true } clause)
            {
                format = clause.Groups["name"].Value;
                text = text[..clause.Index];
            }

            return (new SqlRequest(text, format), null);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0;
            return (null, HttpLimits.TooLarge(limit, null));
        }
        catch (BadHttpRequestException e)
        {
            return (null, Results.Problem(title: "bad request", detail: e.Message, statusCode: e.StatusCode));
        }
        catch (JsonException e)
        {
            return (null, Problem("body", $"not valid JSON: {e.Message}"));
        }
        catch (DecoderFallbackException)
        {
            return (null, Problem("body", "the statement is not valid UTF-8"));
        }
    }

    private static bool IsRawSql(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && (media.MediaType.Equals("text/plain", StringComparison.OrdinalIgnoreCase) || media.MediaType.Equals("application/sql", StringComparison.OrdinalIgnoreCase));

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";

    private static IResult Problem(string field, string detail) =>
        Results.Problem(title: $"invalid '{field}'", detail: detail, statusCode: StatusCodes.Status400BadRequest,
            extensions: new Dictionary<string, object?> { ["field"] = field });

    [GeneratedRegex(@"\s+FORMAT\s+(?<name>[A-Za-z]+)\s*;?\s*\z", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex TrailingFormat();
}
