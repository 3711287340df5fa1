using System.Text.Json.Serialization;
using LambdaPlatform.ClickHouse;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

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

    /// <summary>Maps the endpoint onto <paramref name="routes"/>.</summary>
    public static IEndpointRouteBuilder MapSqlEndpoint(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/sql", HandleAsync)
            .WithName("Sql")
            .WithSummary("Run one read-only SQL statement against the serving ClickHouse")
            .Accepts<SqlRequest>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/plain")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return routes;
    }

    private static async Task<IResult> HandleAsync(SqlRequest? request, IClickHouse clickHouse, HttpContext context, CancellationToken cancellationToken)
    {
        if (request is null)
        {
            return Problem("body", "send a JSON body {\"sql\": \"SELECT ...\", \"format\": \"TabSeparatedWithNames\"}");
        }

        var format = string.IsNullOrWhiteSpace(request.Format) ? DefaultFormat : request.Format;
        if (!Formats.Contains(format))
        {
            return Problem("format", $"unsupported format '{format}' (supported: {string.Join(", ", Formats.Order(StringComparer.Ordinal))})");
        }

        if (ReadOnlySql.Check(request.Sql) is { } refusal)
        {
            return Problem("sql", refusal);
        }

        Stream result;
        try
        {
            result = await clickHouse.QueryAsync(ReadOnlyQuery(request.Sql!), format, cancellationToken);
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

    /// <summary>The query with <c>readonly = 1</c> forced, so even a statement the checker missed cannot write.</summary>
    private static string ReadOnlyQuery(string sql)
    {
        var trimmed = sql.TrimEnd().TrimEnd(';');
        return trimmed.Contains("SETTINGS", StringComparison.OrdinalIgnoreCase) ? trimmed : trimmed + "\nSETTINGS readonly = 1";
    }

    private static IResult Problem(string field, string detail) =>
        Results.Problem(title: $"invalid '{field}'", detail: detail, statusCode: StatusCodes.Status400BadRequest,
            extensions: new Dictionary<string, object?> { ["field"] = field });
}
