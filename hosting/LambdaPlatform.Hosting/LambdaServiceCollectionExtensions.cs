using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Jobs;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Serving.Views;
using LambdaPlatform.Speed;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace LambdaPlatform.Hosting;

/// <summary>What the HTTP API of a process is configured with.</summary>
public sealed record ServingSettings
{
    /// <summary>API keys; default none (an open API).</summary>
    public ApiKeys ApiKeys { get; init; } = ApiKeys.None;

    /// <summary>Limits against oversized bodies and slow clients.</summary>
    public HttpLimits Limits { get; init; } = new();

    /// <summary>Caching of view answers.</summary>
    public ViewsApiOptions Views { get; init; } = new();

    /// <summary>How the API follows the pipeline state (the staleness bound and the speed layer's group).</summary>
    public PipelineStateOptions Pipeline { get; init; } = new();
}

/// <summary>
/// The platform's composition, one helper per role, used by every <c>lambda</c> command (<c>up</c> runs all of them in one
/// process; <c>speed</c>, <c>archive</c>, <c>serve</c>, <c>batch run</c> the ones they need). Start with
/// <see cref="AddLambdaCore"/>; the others take what it registered from the container.
/// </summary>
public static class LambdaServiceCollectionExtensions
{
    /// <summary>
    /// Registers what every role shares: the serving ClickHouse (<see cref="IClickHouse"/>; and a read-only client for the API
    /// under <see cref="ServingApi.ReaderKey"/> when given), each wrapped in a <see cref="TracingClickHouse"/>, the view
    /// definitions, the event schemas and the clock. Traces and logs: <see cref="LambdaTelemetry.AddLambdaTelemetry"/>.
    /// </summary>
    public static IServiceCollection AddLambdaCore(this IServiceCollection services, IClickHouse serving, IReadOnlyList<ViewDefinition> views, EventSchemaRegistry schemas,
        TimeProvider? clock = null, IClickHouse? reader = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(serving);
        ArgumentNullException.ThrowIfNull(views);
        ArgumentNullException.ThrowIfNull(schemas);
        // Every statement a role runs is a span under the operation that ran it (see TracingClickHouse).
        services.AddSingleton(TracingClickHouse.Wrap(serving));
        if (reader is not null)
        {
            services.AddKeyedSingleton(ServingApi.ReaderKey, TracingClickHouse.Wrap(reader));
        }

        services.AddSingleton(views);
        services.AddSingleton(schemas);
        services.AddSingleton(clock ?? TimeProvider.System);
        return services;
    }

    /// <summary>
    /// Replaces the registered <see cref="IClickHouse"/> with <paramref name="decorate"/> of it (e.g. instrumentation, or a test's
    /// fault injection); every role that takes it from the container gets the decorated one. Call after <see cref="AddLambdaCore"/>.
    /// </summary>
    public static IServiceCollection DecorateClickHouse(this IServiceCollection services, Func<IClickHouse, IClickHouse> decorate)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(decorate);
        var inner = services.LastOrDefault(d => d.ServiceType == typeof(IClickHouse) && !d.IsKeyedService)?.ImplementationInstance as IClickHouse
            ?? throw new InvalidOperationException("DecorateClickHouse needs an IClickHouse instance registered by AddLambdaCore first");
        services.RemoveAll<IClickHouse>();
        services.AddSingleton(decorate(inner));
        return services;
    }

    /// <summary>
    /// The speed layer: its consumer as a hosted service writing to the raw events table and every view's real-time table, its
    /// progress recorded in ClickHouse at each durable flush (<see cref="ClickHouseSpeedProgress"/>), its metrics and its health check
    /// (<c>speed</c>).
    /// </summary>
    public static IServiceCollection AddSpeedLayer(this IServiceCollection services, SpeedOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        services.TryAddSingleton<SpeedMetrics>();
        services.AddSingleton(sp => new SpeedConsumer(
            options, sp.GetRequiredService<EventSchemaRegistry>(),
            SpeedSinks.Create(sp.GetRequiredService<IClickHouse>(), sp.GetRequiredService<IReadOnlyList<ViewDefinition>>(), sp.GetRequiredService<EventSchemaRegistry>(),
                sp.GetRequiredService<SpeedMetrics>(), sp.GetRequiredService<TimeProvider>()),
            sp.GetRequiredService<SpeedMetrics>(), sp.GetRequiredService<ILogger<SpeedConsumer>>(), sp.GetRequiredService<TimeProvider>(),
            progress: new ClickHouseSpeedProgress(sp.GetRequiredService<IClickHouse>())));
        services.AddHostedService(sp => sp.GetRequiredService<SpeedConsumer>());
        services.AddHealthChecks().AddCheck<SpeedHealthCheck>("speed");
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(SpeedMetrics.MeterName)).WithTracing(tracing => tracing.AddSource(SpeedTracing.SourceName));
        return services;
    }

    /// <summary>
    /// The archiver: Kafka into the Parquet master dataset under <see cref="ArchiverOptions.RootPath"/>, as a hosted service, with
    /// its metrics and health check (<c>archiver</c>). When an <see cref="IClickHouse"/> is registered, its progress is recorded
    /// there too (<see cref="ClickHouseArchiveProgress"/>, best effort).
    /// </summary>
    public static IServiceCollection AddArchiver(this IServiceCollection services, ArchiverOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        services.AddSingleton(options);
        services.TryAddSingleton<ArchiverMetrics>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new Archiver(options, sp.GetRequiredService<EventSchemaRegistry>(), sp.GetRequiredService<ArchiverMetrics>(),
            sp.GetRequiredService<ILogger<Archiver>>(), sp.GetRequiredService<TimeProvider>(),
            progress: sp.GetService<IClickHouse>() is { } clickHouse ? new ClickHouseArchiveProgress(clickHouse, sp.GetRequiredService<TimeProvider>()) : null));
        services.AddHostedService(sp => sp.GetRequiredService<Archiver>());
        services.AddHealthChecks().AddCheck<ArchiverHealthCheck>("archiver");
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(ArchiverMetrics.MeterName)).WithTracing(tracing => tracing.AddSource(ArchiveTracing.SourceName));
        return services;
    }

    /// <summary>
    /// The batch recompute: <paramref name="engine"/> (chDB) computes the views from the master dataset under
    /// <see cref="BatchOptions.DataRoot"/>, the serving <see cref="IClickHouse"/> receives them; every run is recorded there.
    /// </summary>
    public static IServiceCollection AddBatch(this IServiceCollection services, BatchOptions options, IClickHouse engine)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(engine);
        options.Validate();
        services.TryAddSingleton(options);
        services.TryAddSingleton<BatchMetrics>();
        var tracedEngine = TracingClickHouse.Wrap(engine);
        services.AddSingleton(sp => new BatchRecompute(tracedEngine, sp.GetRequiredService<IClickHouse>(), sp.GetRequiredService<IReadOnlyList<ViewDefinition>>(),
            options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<BatchRecompute>>(), sp.GetRequiredService<BatchMetrics>()));
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(BatchMetrics.MeterName)).WithTracing(tracing => tracing.AddSource(BatchTracing.SourceName));
        return services;
    }

    /// <summary>
    /// The HTTP API (<see cref="ServingApi"/>: views, SQL, health, metrics, OpenAPI) with its keys, limits, cache and the
    /// pipeline-state watcher that gives every answer its freshness and drops stale cached answers.
    /// </summary>
    public static IServiceCollection AddServing(this IServiceCollection services, ServingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(settings);
        services.AddSingleton(settings.ApiKeys);
        services.AddSingleton(settings.Limits.Validate());
        services.AddSingleton(settings.Views.Validate());
        services.AddSingleton(settings.Pipeline.Validate());
        services.AddServingApi();
        return services;
    }

    /// <summary>
    /// The scheduled jobs: Hangfire (storage per <paramref name="options"/>: PostgreSQL for any number of processes), a recurring
    /// recompute per view, compaction and pipeline-state retention. Needs <see cref="AddBatch"/> first (its recompute and data root).
    /// </summary>
    public static IServiceCollection AddJobs(this IServiceCollection services, JobsOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        var batch = services.LastOrDefault(d => d.ServiceType == typeof(BatchOptions))?.ImplementationInstance as BatchOptions
            ?? throw new InvalidOperationException("AddJobs needs AddBatch first");
        services.AddLambdaJobs(options, batch);
        services.AddOpenTelemetry().WithTracing(tracing => tracing.AddSource(JobTracing.SourceName));
        return services;
    }

    /// <summary>Maps the HTTP surface of the roles registered: the API (when <paramref name="api"/>), <c>/health</c> and <c>/metrics</c>, and the jobs' dashboard and batch-run endpoint (when <paramref name="jobs"/>).</summary>
    public static WebApplication MapLambda(this WebApplication app, bool api, bool jobs)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseServingApi();
        if (api)
        {
            app.MapServingApi();
        }
        else
        {
            app.MapHealth();
            app.MapPrometheusScrapingEndpoint("/metrics");
        }

        if (jobs)
        {
            app.MapLambdaJobs();
        }

        return app;
    }
}
