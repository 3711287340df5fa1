using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Serving;

/// <summary>
/// <c>GET /v1/views/{view}/accuracy</c>: the accuracy reports of a view's real-time side, newest day first — what each
/// batch run measured before it dropped a day's real-time rows (see <see cref="AccuracyReport"/>). Query parameter
/// <c>days</c>: how many days, 1 to 366, default 30. Read from ClickHouse, so every API instance answers the same.
/// </summary>
public static class AccuracyEndpoint
{
    /// <summary>Default number of days answered.</summary>
    public const int DefaultDays = 30;

    /// <summary>Maps the endpoint; needs an <see cref="IClickHouse"/> and the view definitions in the container.</summary>
    public static IEndpointRouteBuilder MapAccuracyEndpoint(this IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var views = routes.ServiceProvider.GetRequiredService<IReadOnlyList<ViewDefinition>>()
            .ToDictionary(v => v.Name, v => new ViewSql(v), StringComparer.Ordinal);
        routes.MapGet("/v1/views/{view}/accuracy", (string view, HttpContext context, IClickHouse clickHouse, CancellationToken cancellationToken) =>
                HandleAsync(views, view, context, clickHouse, cancellationToken))
            .WithName("GetViewAccuracy")
            .WithSummary("How far the view's real-time side was from the exact batch side, per day and measure (measured before each batch run dropped a day's real-time rows)")
            .WithDescription("Query parameter: days (1 to 366, default 30). Per measure: buckets compared, buckets out of the kind's bound (for count, sum, min and max: any difference, which should never happen), max and mean relative error, top-k misses.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return routes;
    }

    private static async Task<IResult> HandleAsync(Dictionary<string, ViewSql> views, string view, HttpContext context, IClickHouse clickHouse, CancellationToken cancellationToken)
    {
        if (view.Length > 64 || !views.TryGetValue(view, out var sql))
        {
            return Results.Problem(title: "unknown view", detail: $"there is no view '{(view.Length > 64 ? view[..64] + "…" : view)}' (known: {string.Join(", ", views.Keys)})",
                statusCode: StatusCodes.Status404NotFound, extensions: new Dictionary<string, object?> { ["field"] = "view" });
        }

        var days = DefaultDays;
        if (context.Request.Query.TryGetValue("days", out var text)
            && (!int.TryParse(text.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out days) || days is < 1 or > 366))
        {
            return Results.Problem(title: "invalid 'days'", detail: "days must be a whole number from 1 to 366", statusCode: StatusCodes.Status400BadRequest,
                extensions: new Dictionary<string, object?> { ["field"] = "days" });
        }

        IReadOnlyList<AccuracyReport> reports;
        try
        {
            reports = await new ServingStore(clickHouse).ReadAccuracyAsync(sql, days, cancellationToken);
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(title: e.IsTransient ? "ClickHouse is unavailable" : "the query failed", detail: e.Message.Split('\n')[0],
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError);
        }

        return Results.Json(new
        {
            view = sql.View.Name,
            reports = reports.Select(r => new
            {
                day = r.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                comparedAt = r.ComparedAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                realtimeRows = r.RealtimeRows,
                batchRows = r.BatchRows,
                warning = r.HasWarning,
                measures = r.Measures.Select(m => new
                {
                    name = m.Measure,
                    kind = m.Kind,
                    definition = m.Definition,
                    exact = m.Exact,
                    bound = m.Bound,
                    bucketsCompared = m.BucketsCompared,
                    bucketsOutOfBound = m.BucketsOutOfBound,
                    maxRelativeError = m.MaxRelativeError,
                    meanRelativeError = m.MeanRelativeError,
                    topkMisses = m.TopKMisses,
                    topkCountDifference = m.TopKCountDifference,
                    outOfBoundBuckets = m.OutOfBoundBuckets,
                }),
            }),
        });
    }
}
