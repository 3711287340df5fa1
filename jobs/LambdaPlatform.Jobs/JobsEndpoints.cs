using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hangfire;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Jobs;

/// <summary>What one view-day of a batch run did (an element of <see cref="BatchRunResponse.Results"/>).</summary>
/// <param name="View">The view.</param>
/// <param name="Day">The day (UTC), <c>YYYY-MM-DD</c>.</param>
/// <param name="RowsIn">Master-dataset events of the view's types that day, duplicates included.</param>
/// <param name="RowsOut">Batch rows loaded.</param>
/// <param name="DurationMs">Wall time in milliseconds.</param>
/// <param name="Watermark">The view's W after this day (UTC), or null when W did not move.</param>
/// <param name="WatermarkHeld">Why W did not move over this day (see <see cref="BatchDayResult.WatermarkHeld"/>), or null.</param>
public sealed record BatchRunReport(string View, DateOnly Day, long RowsIn, long RowsOut, long DurationMs, DateTime? Watermark, string? WatermarkHeld)
{
    /// <summary>The report of one <see cref="BatchDayResult"/>.</summary>
    public static BatchRunReport From(BatchDayResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new(result.View, result.Day, result.RowsIn, result.RowsOut, (long)result.Duration.TotalMilliseconds,
            result.Watermark is { } w ? DateTime.SpecifyKind(w, DateTimeKind.Utc) : null, result.WatermarkHeld);
    }
}

/// <summary>Body of a successful <c>POST /v1/batch/run</c>.</summary>
/// <param name="Results">One report per view-day recomputed, in run order; empty when nothing needed it.</param>
public sealed record BatchRunResponse(IReadOnlyList<BatchRunReport> Results);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(BatchRunResponse))]
internal sealed partial class JobsJsonContext : JsonSerializerContext;

/// <summary>Maps the jobs' HTTP surface: the Hangfire dashboard and <c>POST /v1/batch/run</c>.</summary>
public static class JobsEndpointRouteBuilderExtensions
{
    /// <summary>Path of the batch-run endpoint: <c>/v1/batch/run</c>.</summary>
    public const string BatchRunPath = "/v1/batch/run";

    private const int MaxBodyBytes = 16 * 1024;

    /// <summary>
    /// Maps the Hangfire dashboard at <c>/hangfire</c> (access per <see cref="JobsAccess"/>: read-only unless authorised,
    /// refused outside localhost unless authorised) and <c>POST /v1/batch/run</c>.
    /// </summary>
    /// <remarks>
    /// <c>POST /v1/batch/run</c> takes an optional JSON body <c>{"view": "...", "day": "YYYY-MM-DD"}</c> (both optional:
    /// every view, every day that needs it), runs the recompute now and answers when it is done with
    /// <see cref="BatchRunResponse"/>. It needs <see cref="JobsAccessLevel.Full"/> access (401 otherwise). A bad field gives
    /// 400 problem+json with <c>field</c> naming it. It holds the same per-view locks as the scheduled runs, so the two never
    /// overlap; if a lock stays busy for <see cref="JobsOptions.RunLockTimeout"/> the answer is 409.
    /// </remarks>
    /// <param name="endpoints">The application's routes (services from <see cref="JobsServiceCollectionExtensions.AddLambdaJobs"/>).</param>
    /// <returns><paramref name="endpoints"/>.</returns>
    public static IEndpointRouteBuilder MapLambdaJobs(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetRequiredService<JobsOptions>();
        var storage = endpoints.ServiceProvider.GetRequiredService<JobStorage>();
        endpoints.MapHangfireDashboard(JobsOptions.DashboardPath, new DashboardOptions
        {
            DashboardTitle = "LambdaPlatform jobs",
            Authorization = [new JobsDashboardAuthorization(options)],
            IsReadOnlyFunc = context => JobsDashboardAuthorization.Level(context, options) != JobsAccessLevel.Full,

            // The PostgreSQL connection string may carry a password.
            DisplayStorageConnectionString = false,
        }, storage);

        endpoints.MapPost(BatchRunPath, RunAsync)
            .WithName("RunBatch")
            .WithSummary("Recompute batch views now: one view or all, one day or every day that needs it")
            .Accepts<BatchRunRequestDoc>("application/json")
            .Produces<BatchRunResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return endpoints;
    }

    /// <summary>Documents the request body for OpenAPI; the handler parses the body itself to name bad fields.</summary>
    /// <param name="View">View name; omitted or null for every view.</param>
    /// <param name="Day">Day <c>YYYY-MM-DD</c> (UTC) to recompute even when not dirty; omitted or null for every day that needs it.</param>
    internal sealed record BatchRunRequestDoc(string? View, string? Day);

    private static async Task<IResult> RunAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<JobsOptions>();
        if (JobsAccess.Evaluate(context, options) != JobsAccessLevel.Full)
        {
            return Results.Problem(title: "not authorised",
                detail: options.ApiKey is null ? "batch runs are allowed from localhost only" : $"send the API key in the {JobsOptions.ApiKeyHeader} header",
                statusCode: StatusCodes.Status401Unauthorized);
        }

        var (request, field, problem) = await ReadRequestAsync(context.Request, cancellationToken);
        if (field is not null)
        {
            return Invalid(field, problem!);
        }

        var recompute = services.GetRequiredService<BatchRecompute>();
        if (request.View is { } view && !recompute.Views.Contains(view))
        {
            var shown = view.Length > 64 ? view[..64] + "…" : view;
            return Invalid("view", $"there is no view '{shown}' (known: {string.Join(", ", recompute.Views.Order(StringComparer.Ordinal))})");
        }

        var views = request.View is { } one ? [one] : recompute.Views.ToList();
        try
        {
            await using var held = await RunLocks.AcquireAsync(services.GetRequiredService<JobStorage>(), views.Select(RunLocks.View), options.RunLockTimeout, cancellationToken);
            using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, held.Lost);
            try
            {
                var results = await recompute.RunAsync(request.View, request.Day, progress: null, run.Token);
                return Results.Json(new BatchRunResponse([.. results.Select(BatchRunReport.From)]), JobsJsonContext.Default.BatchRunResponse);
            }
            catch (OperationCanceledException) when (held.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                return Results.Problem(title: "the batch run lost its lock", detail: "the run lock's PostgreSQL session ended (PostgreSQL stopped or restarted); the run stopped: try again",
                    statusCode: StatusCodes.Status503ServiceUnavailable);
            }
        }
        catch (RunLockTimeoutException e)
        {
            return Results.Problem(title: "a batch run of the same view is in progress", detail: e.Message, statusCode: StatusCodes.Status409Conflict);
        }
        catch (ClickHouseException e)
        {
            return Results.Problem(title: e.IsTransient ? "ClickHouse is unavailable" : "the batch run failed", detail: e.Message.Split('\n')[0],
                statusCode: e.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError,
                extensions: new Dictionary<string, object?> { ["clickHouseErrorCode"] = e.ErrorCode });
        }
    }

    private readonly record struct BatchRunRequest(string? View, DateOnly? Day);

    /// <summary>Parses the optional body; on error returns the field to blame and why.</summary>
    private static async Task<(BatchRunRequest Request, string? Field, string? Problem)> ReadRequestAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            return (default, "body", $"the body must be at most {MaxBodyBytes} bytes");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                return (default, "body", $"the body must be at most {MaxBodyBytes} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (bytes.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            return (default, null, null);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            return (default, "body", $"not valid JSON: {e.Message} (send {{\"view\": \"...\", \"day\": \"YYYY-MM-DD\"}}, both optional)");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (default, "body", "send a JSON object {\"view\": \"...\", \"day\": \"YYYY-MM-DD\"} (both optional)");
            }

            string? view = null;
            DateOnly? day = null;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "view":
                        if (property.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null) || property.Value.GetString() is "")
                        {
                            return (default, "view", "must be a view name or null");
                        }

                        view = property.Value.GetString();
                        break;
                    case "day":
                        if (property.Value.ValueKind == JsonValueKind.Null)
                        {
                            break;
                        }

                        if (property.Value.ValueKind != JsonValueKind.String
                            || !DateOnly.TryParseExact(property.Value.GetString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
                        {
                            var raw = property.Value.GetRawText();
                            return (default, "day", $"must be a date YYYY-MM-DD (UTC), not {(raw.Length > 64 ? raw[..64] + "…" : raw)}");
                        }

                        day = parsed;
                        break;
                    default:
                        var name = property.Name.Length > 64 ? property.Name[..64] + "…" : property.Name;
                        return (default, name, $"unknown field '{name}' (expected: view, day)");
                }
            }

            return (new BatchRunRequest(view, day), null, null);
        }
    }

    private static IResult Invalid(string field, string detail) =>
        Results.Problem(title: $"invalid '{field}'", detail: detail, statusCode: StatusCodes.Status400BadRequest,
            extensions: new Dictionary<string, object?> { ["field"] = field });
}
