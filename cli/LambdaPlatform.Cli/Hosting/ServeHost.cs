using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Hosting;
using LambdaPlatform.Jobs;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Serving.Store;
using LambdaPlatform.Serving.Views;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>Settings of <c>lambda serve</c>.</summary>
public sealed record ServeOptions
{
    /// <summary>The serving ClickHouse server, as the writing user (the jobs swap batch views and move W). Required.</summary>
    public required ClickHouseServerOptions ClickHouse { get; init; }

    /// <summary>A read-only user for the API's reads (views, <c>/v1/sql</c>); null: the writer.</summary>
    public ClickHouseServerOptions? ClickHouseReader { get; init; }

    /// <summary>HTTP listen address. Default <c>127.0.0.1:5080</c>.</summary>
    public string Http { get; init; } = "127.0.0.1:5080";

    /// <summary>Serve the HTTP API (views, SQL, OpenAPI). Default true.</summary>
    public bool Api { get; init; } = true;

    /// <summary>Run the scheduled jobs (Hangfire server and dashboard, <c>POST /v1/batch/run</c>). Default true.</summary>
    public bool Jobs { get; init; } = true;

    /// <summary>The data folder holding the master dataset (shared with the archiver); required with <see cref="Jobs"/>.</summary>
    public string DataDirectory { get; init; } = ".lambda";

    /// <summary>Folder of view definitions; default the shipped <c>schemas/views</c>.</summary>
    public string? ViewsDirectory { get; init; }

    /// <summary>The jobs' settings; their storage must be PostgreSQL (shared by every instance).</summary>
    public JobsOptions JobsOptions { get; init; } = new();

    /// <summary>API keys; default none (an open API).</summary>
    public ApiKeys ApiKeys { get; init; } = ApiKeys.None;

    /// <summary>HTTP limits.</summary>
    public HttpLimits HttpLimits { get; init; } = new();

    /// <summary>Caching of view answers.</summary>
    public ViewsApiOptions ViewsApi { get; init; } = new();

    /// <summary>How the API follows the pipeline state (the staleness bound).</summary>
    public PipelineStateOptions Pipeline { get; init; } = new();

    /// <summary>The clock; default the system clock.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>Traces and logs (OTLP export, JSON logs).</summary>
    public TelemetryOptions Telemetry { get; init; } = new() { Role = "serve" };
}

/// <summary>
/// <c>lambda serve</c>: the serving layer and the scheduled jobs against a ClickHouse server, as one stateless process. Any
/// number run behind a load balancer: answers' freshness and cache invalidation come from ClickHouse
/// (<see cref="PipelineStateWatcher"/>), and Hangfire's PostgreSQL storage makes each scheduled recompute run once per tick across
/// all of them. The batch engine (chDB) computes in a private temporary folder, so instances on one machine do not collide.
/// </summary>
public sealed class ServeHost : IAsyncDisposable
{
    private readonly ServerClickHouse _writer;
    private readonly ServerClickHouse? _reader;
    private readonly ChDbClickHouse? _engine;
    private readonly string? _engineFolder;

    private ServeHost(WebApplication app, ServerClickHouse writer, ServerClickHouse? reader, ChDbClickHouse? engine, string? engineFolder)
    {
        App = app;
        _writer = writer;
        _reader = reader;
        _engine = engine;
        _engineFolder = engineFolder;
    }

    /// <summary>The web application.</summary>
    public WebApplication App { get; }

    /// <summary>Checks the settings, creates missing tables, and starts; returns when the HTTP endpoint listens.</summary>
    /// <exception cref="CliException">A setting is wrong or missing; the message names it.</exception>
    public static async Task<ServeHost> StartAsync(ServeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Api && !options.Jobs)
        {
            throw new CliException("--no-api and --no-jobs leave nothing to serve: keep at least one");
        }

        if (options.Jobs && options.JobsOptions.Storage != JobsStorage.PostgreSql)
        {
            throw new CliException("the jobs of lambda serve keep their state in PostgreSQL, shared by every instance: set postgres.host in the configuration file (or --postgres), or run with --no-jobs");
        }

        HttpLimits limits;
        try
        {
            limits = options.HttpLimits.Validate();
            options.JobsOptions.Validate();
            options.Pipeline.Validate();
            options.ViewsApi.Validate();
            options.Telemetry.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliException(PlatformHost.OneLine(e));
        }

        var schemas = EventSchemaRegistry.LoadDefault();
        var views = ViewLoader.LoadAll(options.ViewsDirectory ?? ViewLoader.DefaultDirectory(), schemas);
        var writer = new ServerClickHouse(options.ClickHouse);
        var reader = options.ClickHouseReader is { } r ? new ServerClickHouse(r) : null;
        ChDbClickHouse? engine = null;
        string? engineFolder = null;
        try
        {
            // Fail fast, with one line, when unreachable; then the tables every role expects.
            var store = new ServingStore(writer);
            await store.EnsurePipelineStateAsync(cancellationToken);
            foreach (var view in views)
            {
                await store.EnsureViewAsync(new ViewSql(view), cancellationToken);
            }

            var dataDirectory = Path.GetFullPath(options.DataDirectory);
            if (options.Jobs)
            {
                Directory.CreateDirectory(dataDirectory);
                engineFolder = Path.Combine(Path.GetTempPath(), "lambda-serve-engine-" + Guid.NewGuid().ToString("N")[..12]);
                engine = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = engineFolder }, cancellationToken);
            }

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddFilter("LambdaPlatform", LogLevel.Information);
            builder.WebHost.UseUrls("http://" + options.Http);
            builder.WebHost.ConfigureKestrel(limits.ApplyTo);
            builder.Services
                .AddLambdaCore(writer, views, schemas, options.Clock, reader)
                .AddServing(new ServingSettings { ApiKeys = options.ApiKeys, Limits = limits, Views = options.ViewsApi, Pipeline = options.Pipeline })
                .AddLambdaTelemetry(options.Telemetry);
            if (engine is not null)
            {
                builder.Services.AddBatch(new BatchOptions { DataRoot = dataDirectory }, engine).AddJobs(options.JobsOptions);
            }

            var app = builder.Build();
            app.MapLambda(options.Api, options.Jobs);
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (IOException e)
            {
                await app.DisposeAsync();
                throw new CliException($"cannot listen on {options.Http}: {e.Message} (choose another with --http)");
            }

            return new ServeHost(app, writer, reader, engine, engineFolder);
        }
        catch
        {
            await DisposeAllAsync(writer, reader, engine, engineFolder);
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        await DisposeAllAsync(_writer, _reader, _engine, _engineFolder);
    }

    private static async Task DisposeAllAsync(ServerClickHouse writer, ServerClickHouse? reader, ChDbClickHouse? engine, string? engineFolder)
    {
        await writer.DisposeAsync();
        if (reader is not null)
        {
            await reader.DisposeAsync();
        }

        if (engine is not null)
        {
            await engine.DisposeAsync();
        }

        if (engineFolder is not null && Directory.Exists(engineFolder))
        {
            try
            {
                Directory.Delete(engineFolder, recursive: true);
            }
            catch (IOException)
            {
                // A temporary folder: left for the system's cleaner.
            }
        }
    }
}
