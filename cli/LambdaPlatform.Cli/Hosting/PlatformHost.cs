using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Jobs;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Serving.Views;
using LambdaPlatform.Speed;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>Settings of <c>lambda up</c>.</summary>
public sealed record UpOptions
{
    /// <summary>Data folder (chDB data, endpoints.json). Default <c>./.lambda</c>.</summary>
    public string DataDirectory { get; init; } = ".lambda";

    /// <summary>HTTP listen address. Default <c>127.0.0.1:5080</c>.</summary>
    public string Http { get; init; } = "127.0.0.1:5080";

    /// <summary>Partitions of the events topic on the dev broker. Default 4.</summary>
    public int Partitions { get; init; } = 4;

    /// <summary>Demo traffic rate in events/s; 0 = no demo traffic.</summary>
    public int DemoRate { get; init; }

    /// <summary>Folder of view definitions; default the shipped <c>schemas/views</c>.</summary>
    public string? ViewsDirectory { get; init; }

    /// <summary>The platform's clock (event-time checks, closed days, freshness); default the system clock. Tests shift it.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>Fixed port of the dev broker, or null for a free one.</summary>
    public int? KafkaPort { get; init; }

    /// <summary>
    /// API keys the HTTP API requires on every endpoint but <c>/health</c>. Default <see cref="ApiKeys.None"/>: the API
    /// is open (and <c>lambda up</c> prints a warning). <c>lambda up</c> reads them from <c>LAMBDA_API_KEYS</c> and a keys file.
    /// </summary>
    public ApiKeys ApiKeys { get; init; } = ApiKeys.None;

    /// <summary>Limits of the HTTP API against oversized bodies and slow clients. Default <see cref="HttpLimits"/>' defaults.</summary>
    public HttpLimits HttpLimits { get; init; } = new();

    /// <summary>
    /// Fault hook for the chaos suite: wraps the ClickHouse (chDB) the speed layer and the HTTP API use, e.g. to make
    /// writes fail for a while. Null (no wrapping) in production.
    /// </summary>
    public Func<IClickHouse, IClickHouse>? ClickHouseFault { get; init; }
}

/// <summary>
/// Everything in one process on embedded defaults: the dev broker, chDB under the data folder, the
/// speed layer, the HTTP API, and optionally demo traffic. Writes <c>endpoints.json</c> when ready.
/// </summary>
public sealed class PlatformHost : IAsyncDisposable
{
    private readonly DevBroker _broker;
    private readonly ChDbClickHouse _clickHouse;
    private readonly EventProducer? _demoProducer;

    private PlatformHost(WebApplication app, DevBroker broker, ChDbClickHouse clickHouse, EventProducer? demoProducer, Endpoints endpoints, string dataDirectory)
    {
        App = app;
        _broker = broker;
        _clickHouse = clickHouse;
        _demoProducer = demoProducer;
        Endpoints = endpoints;
        DataDirectory = dataDirectory;
    }

    /// <summary>The web application (HTTP API and hosted services).</summary>
    public WebApplication App { get; }

    /// <summary>Where the running platform can be reached.</summary>
    public Endpoints Endpoints { get; }

    /// <summary>The data folder.</summary>
    public string DataDirectory { get; }

    /// <summary>Starts every part and returns when the HTTP API listens.</summary>
    public static async Task<PlatformHost> StartAsync(UpOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Partitions is < 1 or > 256)
        {
            throw new CliException($"--partitions must be between 1 and 256, not {options.Partitions}");
        }

        if (options.DemoRate is < 0 or > 1_000_000)
        {
            throw new CliException($"--rate must be between 0 and 1,000,000 events/s, not {options.DemoRate}");
        }

        ArgumentNullException.ThrowIfNull(options.ApiKeys);
        HttpLimits limits;
        try
        {
            limits = (options.HttpLimits ?? new HttpLimits()).Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliException(OneLine(e));
        }

        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dataDirectory);
        var schemas = EventSchemaRegistry.LoadDefault();
        var views = ViewLoader.LoadAll(options.ViewsDirectory ?? ViewLoader.DefaultDirectory(), schemas);

        var broker = DevBroker.Start(new DevBrokerOptions
        {
            Ports = options.KafkaPort is { } port ? [port] : null,
            Topics = [new DevBrokerTopic(Topics.Events, options.Partitions), new DevBrokerTopic(Topics.DeadLetter, options.Partitions)],
        });
        var clickHouse = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(dataDirectory, "chdb") }, cancellationToken);

        // Serving tables exist before anything can ask for them (the API must not fail while the speed layer starts).
        foreach (var sink in SpeedSinks.Create(clickHouse, views, schemas))
        {
            await sink.InitializeAsync(cancellationToken);
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("LambdaPlatform", LogLevel.Information);
        builder.WebHost.UseUrls("http://" + options.Http);
        builder.WebHost.ConfigureKestrel(limits.ApplyTo);
        builder.Services.AddSingleton(options.ApiKeys);
        builder.Services.AddSingleton(limits);
        builder.Services.AddSingleton(options.Clock);
        builder.Services.AddSingleton<IClickHouse>(options.ClickHouseFault?.Invoke(clickHouse) ?? clickHouse);
        builder.Services.AddSingleton(schemas);
        builder.Services.AddSingleton<SpeedMetrics>();
        builder.Services.AddSingleton(new SpeedOptions { BootstrapServers = broker.BootstrapServers }.Validate());
        builder.Services.AddSingleton(views);
        builder.Services.AddSingleton(sp => SpeedSinks.Create(sp.GetRequiredService<IClickHouse>(), views, schemas, sp.GetRequiredService<SpeedMetrics>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ViewFreshness>().RealtimeFlushed));
        builder.Services.AddSingleton(sp => new SpeedConsumer(
            sp.GetRequiredService<SpeedOptions>(), schemas, sp.GetRequiredService<IReadOnlyList<IEventSink>>(),
            sp.GetRequiredService<SpeedMetrics>(), sp.GetRequiredService<ILogger<SpeedConsumer>>(), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SpeedConsumer>());
        builder.Services.AddSingleton(new ArchiverOptions { BootstrapServers = broker.BootstrapServers, RootPath = dataDirectory }.Validate());
        builder.Services.AddSingleton<ArchiverMetrics>();
        builder.Services.AddSingleton<Archiver>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Archiver>());
        builder.Services.AddSingleton<BatchMetrics>();
        builder.Services.AddSingleton(sp => new BatchRecompute(clickHouse, clickHouse, views, new BatchOptions { DataRoot = dataDirectory }, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<BatchRecompute>>(), sp.GetRequiredService<BatchMetrics>()) { WatermarkMoved = (view, _) => sp.GetRequiredService<ViewFreshness>().WatermarkMoved(view) });
        builder.Services.AddServingApi(SpeedMetrics.MeterName, ArchiverMetrics.MeterName, BatchMetrics.MeterName);
        builder.Services.AddLambdaJobs(new JobsOptions(), new BatchOptions { DataRoot = dataDirectory });
        builder.Services.AddHealthChecks().AddCheck<ArchiverHealthCheck>("archiver");
        builder.Services.AddHealthChecks().AddCheck<SpeedHealthCheck>("speed");

        EventProducer? demoProducer = null;
        if (options.DemoRate > 0)
        {
            demoProducer = new EventProducer(broker.BootstrapServers);
            builder.Services.AddHostedService(sp => new DemoTraffic(demoProducer, options.DemoRate, sp.GetRequiredService<TimeProvider>()));
        }

        var app = builder.Build();
        app.UseServingApi();
        app.MapServingApi();
        app.MapLambdaJobs();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            demoProducer?.Dispose();
            await clickHouse.DisposeAsync();
            broker.Dispose();
            throw new CliException($"cannot listen on {options.Http}: {e.Message} (choose another with --http)");
        }

        var endpoints = new Endpoints(broker.BootstrapServers, "http://" + options.Http, "chdb:" + Path.Combine(dataDirectory, "chdb"));
        await endpoints.WriteAsync(dataDirectory, cancellationToken);
        return new PlatformHost(app, broker, clickHouse, demoProducer, endpoints, dataDirectory);
    }

    /// <summary>An argument error's message without the " (Parameter 'x')" and "Actual value was …" that .NET appends.</summary>
    internal static string OneLine(ArgumentException e)
    {
        var message = e.Message.Split('\n')[0];
        var parameter = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return parameter < 0 ? message : message[..parameter];
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Endpoints.Delete(DataDirectory);
        await App.StopAsync();
        await App.DisposeAsync();
        _demoProducer?.Dispose();
        await _clickHouse.DisposeAsync();
        _broker.Dispose();
    }

    private sealed class ArchiverHealthCheck(Archiver archiver) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(archiver.Health.Healthy ? HealthCheckResult.Healthy(archiver.Health.Status) : HealthCheckResult.Unhealthy(archiver.Health.Status));
    }

    private sealed class SpeedHealthCheck(SpeedConsumer consumer) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var health = consumer.Health;
            var description = $"{health.Status}; last flush {(health.LastFlushAt is { } at ? at.ToString("O", System.Globalization.CultureInfo.InvariantCulture) : "never")}";
            return Task.FromResult(health.Healthy ? HealthCheckResult.Healthy(description) : HealthCheckResult.Unhealthy(description));
        }
    }
}
