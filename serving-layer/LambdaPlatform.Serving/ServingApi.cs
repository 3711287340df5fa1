using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving.Views;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Scalar.AspNetCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using System.Diagnostics.Metrics;
using LambdaPlatform.Serving.Ops;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace LambdaPlatform.Serving;

/// <summary>
/// Registers and maps the platform's HTTP API: <c>/v1/views</c>, <c>/v1/views/{view}</c>, <c>/v1/sql</c>,
/// <c>/health</c>, <c>/metrics</c> (Prometheus), <c>/openapi/v1.json</c>, the interactive page <c>/docs</c> and the operations
/// page at <c>/</c> (<see cref="OpsPage"/>).
/// Needs an <see cref="IClickHouse"/>, the view definitions and a <see cref="TimeProvider"/> in the container. A keyed
/// <see cref="IClickHouse"/> under <see cref="ReaderKey"/> (e.g. ClickHouse's read-only <c>analyst</c> user), when present,
/// answers the views and <c>/v1/sql</c> instead.
/// </summary>
/// <remarks>
/// Security: register <see cref="ApiKeys"/> and <see cref="HttpLimits"/> in the container to configure them (defaults:
/// no keys, i.e. an open API, and <see cref="HttpLimits"/>' defaults). With keys, every endpoint but <c>/health</c> needs
/// one (see <see cref="ApiKeyAuthentication"/>). Call <see cref="UseServingApi"/> before mapping.
/// </remarks>
public static class ServingApi
{
    /// <summary>Service key of the <see cref="IClickHouse"/> that answers reads, when it differs from the writer: <c>reader</c>.</summary>
    public const string ReaderKey = "reader";

    /// <summary>The ClickHouse that answers the API's reads: the keyed <see cref="ReaderKey"/> one, else the container's <see cref="IClickHouse"/>.</summary>
    public static IClickHouse ServingClickHouse(IServiceProvider services) =>
        services.GetKeyedService<IClickHouse>(ReaderKey) ?? services.GetRequiredService<IClickHouse>();

    /// <summary>
    /// Adds what the API needs: health checks and OpenTelemetry metrics (ASP.NET Core's, the runtime's,
    /// and every meter named in <paramref name="meters"/>) exported in Prometheus format.
    /// </summary>
    public static IServiceCollection AddServingApi(this IServiceCollection services, params string[] meters)
    {
        services.TryAddSingleton(new HttpLimits());
        services.AddApiKeyAuthentication();
        services.TryAddSingleton(new ViewsApiOptions());
        services.TryAddSingleton(new PipelineStateOptions());
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new PipelineStateWatcher(ServingClickHouse(sp), sp.GetRequiredService<PipelineStateOptions>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PipelineStateWatcher>>()));
        services.AddHostedService(sp => sp.GetRequiredService<PipelineStateWatcher>());
        services.AddSingleton(sp => new ViewsEndpoints(ServingClickHouse(sp), sp.GetRequiredService<IReadOnlyList<ViewDefinition>>(),
            sp.GetRequiredService<PipelineStateWatcher>(), sp.GetRequiredService<ViewsApiOptions>().Validate(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new ApiLatency(sp.GetRequiredService<IMeterFactory>(), sp.GetRequiredService<TimeProvider>()));
        services.AddOpenApi();
        services.AddHealthChecks();
        services.AddProblemDetails();
        services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel");
            metrics.AddMeter(meters);
            metrics.AddPrometheusExporter();
        });
        return services;
    }

    /// <summary>
    /// Adds the API's middleware: routing, authentication and authorization (API keys), and the per-endpoint body-size
    /// limits (413 with a problem body when <c>Content-Length</c> is over the limit).
    /// </summary>
    public static IApplicationBuilder UseServingApi(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseRouting();
        app.UseAuthentication();
        app.UseAuthorization();
        app.Use(BodySizeLimits.InvokeAsync);
        return app;
    }

    /// <summary>Maps the endpoints; <c>/health</c> is open even when API keys are required.</summary>
    public static IEndpointRouteBuilder MapServingApi(this IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        routes.MapSqlEndpoint();
        routes.ServiceProvider.GetRequiredService<ViewsEndpoints>().Map(routes);
        routes.MapAccuracyEndpoint();

        // The operations page; its latency figures start with the first request, not with the first visit.
        routes.ServiceProvider.GetRequiredService<ApiLatency>();
        routes.MapOpsPage();
        routes.MapOpenApi();
        routes.MapScalarApiReference("/docs");
        MapHealth(routes);
        routes.MapPrometheusScrapingEndpoint("/metrics");
        return routes;
    }

    /// <summary>
    /// Maps <c>/health</c> (open even when API keys are required): 200 with every check's status and description as JSON,
    /// 503 when one is unhealthy. Used by every command that serves HTTP.
    /// </summary>
    public static IEndpointConventionBuilder MapHealth(this IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        return routes.MapHealthChecks("/health", new HealthCheckOptions
        {
            ResponseWriter = async (context, report) =>
            {
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsJsonAsync(new
                {
                    status = report.Status.ToString(),
                    checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
                });
            },
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        }).AllowAnonymous();
    }
}
