using System.Text.Json;
using System.Text.Json.Serialization;
using LambdaPlatform.ClickHouse;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Serving;

/// <summary>Body of <c>POST /v1/sql</c>.</summary>
/// <param name="Sql">One read-only statement, without a FORMAT clause.</param>
/// <param name="Format">ClickHouse output format; default <c>TabSeparatedWithNames</c>.</param>
public sealed record SqlRequest([property: JsonPropertyName("sql")] string? Sql, [property: JsonPropertyName("format")] string? Format);

/// <summary>
/// <c>POST /v1/sql</c>: read-only SQL for analysts (what <c>lambda sql</c> calls). The result streams
/// back in the requested ClickHouse format. A refused or failing query gets a problem+json body naming
/// the field and the ClickHouse error code.
/// </summary>
public static class SqlEndpoint
{
    /// <summary>Default output format.</summary>
    public const string DefaultFormat = "TabSeparatedWithNames";

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
        routes.MapPost("/v1/sql", HandleAsync)
            .WithName("Sql")
            .WithSummary("Run one read-only SQL statement against the serving ClickHouse")
            .WithMetadata(new BodySizeLimit(limits.MaxSqlBodyBytes))
            .Accepts<SqlRequest>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/plain")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return routes;
    }

    private static async Task<IResult> HandleAsync(HttpContext context, IClickHouse clickHouse, CancellationToken cancellationToken)
    {
        // The body is read here rather than bound, so that a body over the limit (also a chunked one, which Kestrel
        // cuts off while it is read) gets a 413 that says so.
        var (request, problem) = await ReadRequestAsync(context, cancellationToken);
        if (problem is not null)
        {
            return problem;
        }

        if (request is null)
        {
            return Problem("body", "send a JSON body {\"sql\": \"SELECT ...\", \"format\": \"TabSeparatedWithNames\"}");
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

        if (!http.HasJsonContentType())
        {
            return (null, Results.Problem(title: "unsupported media type", detail: "send the body as application/json",
                statusCode: StatusCodes.Status415UnsupportedMediaType, extensions: new Dictionary<string, object?> { ["field"] = "body" }));
        }

        try
        {
            return (await http.ReadFromJsonAsync<SqlRequest>(cancellationToken), null);
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
    }

    private static IResult Problem(string field, string detail) =>
        Results.Problem(title: $"invalid '{field}'", detail: detail, statusCode: StatusCodes.Status400BadRequest,
            extensions: new Dictionary<string, object?> { ["field"] = field });
}
