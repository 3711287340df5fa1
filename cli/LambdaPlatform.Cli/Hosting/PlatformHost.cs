using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Hosting;
using LambdaPlatform.Jobs;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Serving.Store;
using LambdaPlatform.Serving.Views;
using LambdaPlatform.Speed;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>Settings of <c>lambda up</c>. Everything not set runs on embedded defaults.</summary>
public sealed record UpOptions
{
    /// <summary>Data folder (chDB data, the master dataset, endpoints.json). Default <c>./.lambda</c>.</summary>
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

    /// <summary>Kafka bootstrap servers of an existing cluster; null (default): start the dev broker in this process.</summary>
    public string? Kafka { get; init; }

    /// <summary>A ClickHouse server for the serving tables; null (default): embedded chDB under the data folder.</summary>
    public ClickHouseServerOptions? ClickHouse { get; init; }

    /// <summary>A read-only user of that server for the API's reads; null: the writer.</summary>
    public ClickHouseServerOptions? ClickHouseReader { get; init; }

    /// <summary>The scheduled jobs (storage, schedules). Default in-memory storage, each view's own schedule.</summary>
    public JobsOptions Jobs { get; init; } = new();

    /// <summary>Consumer group of the speed layer. Default <c>speed</c>.</summary>
    public string SpeedGroup { get; init; } = "speed";

    /// <summary>Consumer group of the archiver. Default <c>archive</c>.</summary>
    public string ArchiveGroup { get; init; } = "archive";

    /// <summary>Seconds after which the archiver publishes a partition's open file. Default 15.</summary>
    public TimeSpan ArchiveMaxFileAge { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Caching of view answers. Default <see cref="ViewsApiOptions"/>' defaults.</summary>
    public ViewsApiOptions ViewsApi { get; init; } = new();

    /// <summary>How often the API reads the change markers and the speed progress (the staleness bound). Default 1 s.</summary>
    public TimeSpan ChangePollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// API keys the HTTP API requires on every endpoint but <c>/health</c>. Default <see cref="ApiKeys.None"/>: the API
    /// is open (and <c>lambda up</c> prints a warning). <c>lambda up</c> reads them from <c>LAMBDA_API_KEYS</c> and a keys file.
    /// </summary>
    public ApiKeys ApiKeys { get; init; } = ApiKeys.None;

    /// <summary>Limits of the HTTP API against oversized bodies and slow clients. Default <see cref="HttpLimits"/>' defaults.</summary>
    public HttpLimits HttpLimits { get; init; } = new();

    /// <summary>Traces and logs (OTLP export, JSON logs). Default: spans recorded, exported only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; text logs.</summary>
    public TelemetryOptions Telemetry { get; init; } = new() { Role = "up" };
}

/// <summary>
/// Everything in one process: the speed layer, the archiver, the batch recompute and its schedule, and the HTTP API, composed
/// by the same helpers as the separate commands (<see cref="LambdaServiceCollectionExtensions"/>). On embedded defaults it
/// also starts the dev broker and chDB under the data folder; with <see cref="UpOptions.Kafka"/> and
/// <see cref="UpOptions.ClickHouse"/> it runs against real servers (a small install). Writes <c>endpoints.json</c> when ready.
/// </summary>
public sealed class PlatformHost : IAsyncDisposable
{
    private readonly DevBroker? _broker;
    private readonly IClickHouse _clickHouse;
    private readonly ChDbClickHouse? _engine;
    private readonly EventProducer? _demoProducer;

    private PlatformHost(WebApplication app, DevBroker? broker, IClickHouse clickHouse, ChDbClickHouse? engine, EventProducer? demoProducer, Endpoints endpoints, string dataDirectory)
    {
        App = app;
        _broker = broker;
        _clickHouse = clickHouse;
        _engine = engine;
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
    public static Task<PlatformHost> StartAsync(UpOptions options, CancellationToken cancellationToken = default) => StartAsync(options, null, cancellationToken);

    /// <summary>
    /// Starts every part and returns when the HTTP API listens. <paramref name="configureServices"/>, when given, runs after the
    /// composition and before the host is built (e.g. <see cref="LambdaServiceCollectionExtensions.DecorateClickHouse"/> for a test's faults).
    /// </summary>
    public static async Task<PlatformHost> StartAsync(UpOptions options, Action<IServiceCollection>? configureServices, CancellationToken cancellationToken = default)
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
        SpeedOptions speed;
        ArchiverOptions archiver;
        try
        {
            limits = (options.HttpLimits ?? new HttpLimits()).Validate();
            options.Jobs.Validate();
            speed = new SpeedOptions { BootstrapServers = options.Kafka ?? "placeholder:1", GroupId = options.SpeedGroup }.Validate();
            archiver = new ArchiverOptions { BootstrapServers = options.Kafka ?? "placeholder:1", RootPath = "placeholder", GroupId = options.ArchiveGroup, MaxFileAge = options.ArchiveMaxFileAge }.Validate();
            new PipelineStateOptions { PollInterval = options.ChangePollInterval, SpeedGroup = options.SpeedGroup }.Validate();
            options.ViewsApi.Validate();
            options.Telemetry.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliException(OneLine(e));
        }

        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dataDirectory);
        var schemas = EventSchemaRegistry.LoadDefault();
        var views = ViewLoader.LoadAll(options.ViewsDirectory ?? ViewLoader.DefaultDirectory(), schemas);

        DevBroker? broker = null;
        IClickHouse? clickHouse = null;
        ChDbClickHouse? engine = null;
        ServerClickHouse? reader = null;
        try
        {
            broker = options.Kafka is null
                ? DevBroker.Start(new DevBrokerOptions
                {
                    Ports = options.KafkaPort is { } port ? [port] : null,
                    Topics = [new DevBrokerTopic(Topics.Events, options.Partitions), new DevBrokerTopic(Topics.DeadLetter, options.Partitions)],
                })
                : null;
            var bootstrap = options.Kafka ?? broker!.BootstrapServers;

            // chDB computes the batch views in every case; it also serves them when no server is given.
            engine = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(dataDirectory, options.ClickHouse is null ? "chdb" : "batch-engine") }, cancellationToken);
            clickHouse = options.ClickHouse is { } server ? new ServerClickHouse(server) : engine;
            reader = options.ClickHouseReader is { } readOnly ? new ServerClickHouse(readOnly) : null;

            // Serving tables exist before anything can ask for them (the API must not fail while the speed layer starts).
            await new ServingStore(clickHouse).EnsurePipelineStateAsync(cancellationToken);
            foreach (var sink in SpeedSinks.Create(clickHouse, views, schemas))
            {
                await sink.InitializeAsync(cancellationToken);
            }

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddFilter("LambdaPlatform", LogLevel.Information);
            builder.WebHost.UseUrls("http://" + options.Http);
            builder.WebHost.ConfigureKestrel(limits.ApplyTo);
            builder.Services
                .AddLambdaCore(clickHouse, views, schemas, options.Clock, reader)
                .AddSpeedLayer(speed with { BootstrapServers = bootstrap })
                .AddArchiver(archiver with { BootstrapServers = bootstrap, RootPath = dataDirectory })
                .AddBatch(new BatchOptions { DataRoot = dataDirectory }, engine)
                .AddServing(new ServingSettings
                {
                    ApiKeys = options.ApiKeys,
                    Limits = limits,
                    Views = options.ViewsApi,
                    Pipeline = new PipelineStateOptions { PollInterval = options.ChangePollInterval, SpeedGroup = options.SpeedGroup },
                })
                .AddJobs(options.Jobs)
                .AddLambdaTelemetry(options.Telemetry);
            configureServices?.Invoke(builder.Services);

            EventProducer? demoProducer = null;
            if (options.DemoRate > 0)
            {
                demoProducer = new EventProducer(bootstrap);
                builder.Services.AddHostedService(sp => new DemoTraffic(demoProducer, options.DemoRate, sp.GetRequiredService<TimeProvider>()));
            }

            var app = builder.Build();
            app.MapLambda(api: true, jobs: true);
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (IOException e)
            {
                await app.DisposeAsync();
                demoProducer?.Dispose();
                throw new CliException($"cannot listen on {options.Http}: {e.Message} (choose another with --http)");
            }

            var endpoints = new Endpoints(bootstrap, "http://" + options.Http, options.ClickHouse is { } s ? s.ToString() : "chdb:" + Path.Combine(dataDirectory, "chdb"));
            await endpoints.WriteAsync(dataDirectory, cancellationToken);
            return new PlatformHost(app, broker, clickHouse, engine, demoProducer, endpoints, dataDirectory);
        }
        catch
        {
            if (reader is not null)
            {
                await reader.DisposeAsync();
            }

            if (clickHouse is not null && !ReferenceEquals(clickHouse, engine))
            {
                await clickHouse.DisposeAsync();
            }

            if (engine is not null)
            {
                await engine.DisposeAsync();
            }

            broker?.Dispose();
            throw;
        }
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
        if (!ReferenceEquals(_clickHouse, _engine))
        {
            await _clickHouse.DisposeAsync();
        }

        if (_engine is not null)
        {
            await _engine.DisposeAsync();
        }

        _broker?.Dispose();
    }
}
