using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.InMemory;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Hangfire.Server;
using Hangfire.States;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LambdaPlatform.Jobs;

/// <summary>Adds the scheduled jobs (Hangfire storage, server, recurring jobs) to a host.</summary>
public static class JobsServiceCollectionExtensions
{
    /// <summary>
    /// Registers Hangfire with the storage of <paramref name="options"/>, a Hangfire server whose recurring-job
    /// scheduler reads the container's <see cref="TimeProvider"/>, the job classes (<see cref="BatchRecomputeJob"/>,
    /// <see cref="MasterCompactionJob"/>, <see cref="PipelineStateRetentionJob"/>), and a start-up step that registers the recurring jobs (removing those of
    /// views that no longer exist).
    /// </summary>
    /// <remarks>
    /// <para>The container must hold an <see cref="IClickHouse"/> (batch engine and serving) and the views as
    /// <see cref="IReadOnlyList{T}"/> of <see cref="ViewDefinition"/>; a <see cref="TimeProvider"/> is optional
    /// (default <see cref="TimeProvider.System"/>). A <see cref="BatchRecompute"/> already registered is used as it is
    /// (e.g. one whose batch engine differs from the serving ClickHouse); otherwise one is created from
    /// <paramref name="batch"/>. Every batch run of the process goes through that one instance.</para>
    /// <para>Hangfire's job storage and activator are taken from the container, not from Hangfire's static
    /// <c>JobStorage.Current</c>, so several hosts may live in one process one after another (tests).</para>
    /// <para>Call before registering hosted services that must start after the jobs, and add the endpoints with
    /// <see cref="JobsEndpointRouteBuilderExtensions.MapLambdaJobs"/>.</para>
    /// </remarks>
    /// <param name="services">The container.</param>
    /// <param name="options">Jobs settings; validated here.</param>
    /// <param name="batch">Settings of the batch recompute and where the master dataset is (<see cref="BatchOptions.DataRoot"/>); validated here.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    public static IServiceCollection AddLambdaJobs(this IServiceCollection services, JobsOptions options, BatchOptions batch)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(batch);
        options.Validate();
        batch.Validate();

        services.AddSingleton(options);
        services.TryAddSingleton(batch);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<BatchMetrics>();
        services.TryAddSingleton(sp => new BatchRecompute(
            sp.GetRequiredService<IClickHouse>(), sp.GetRequiredService<IClickHouse>(), sp.GetRequiredService<IReadOnlyList<ViewDefinition>>(),
            sp.GetRequiredService<BatchOptions>(), sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<BatchRecompute>>(), sp.GetRequiredService<BatchMetrics>()));
        services.TryAddSingleton(sp => new MasterDataset(sp.GetRequiredService<BatchOptions>().DataRoot, sp.GetRequiredService<TimeProvider>()));
        services.AddTransient<BatchRecomputeJob>();
        services.AddTransient<MasterCompactionJob>();
        services.AddTransient<PipelineStateRetentionJob>();

        // Registered before AddHangfire, whose TryAdd calls then keep these instead of Hangfire's static defaults.
        services.AddSingleton<JobStorage>(sp =>
        {
            // Hangfire's configuration (log provider above all) must be this host's before Hangfire objects are made.
            HangfireServiceCollectionExtensions.ThrowIfNotConfigured(sp);
            return CreateStorage(options);
        });
        services.AddSingleton<JobActivator>(sp => new AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>()));

        // Hangfire's global filters plus this host's: each job a span (JobTracing), without touching the static GlobalJobFilters.
        services.TryAddSingleton<IJobFilterProvider>(_ =>
        {
            var own = new JobFilterCollection();
            own.Add(JobTracing.Filter);
            return new JobFilterProviderCollection(JobFilterProviders.Providers, own);
        });
        services.AddSingleton(sp => new RecurringJobManager(
            sp.GetRequiredService<JobStorage>(), sp.GetRequiredService<IJobFilterProvider>(), sp.GetRequiredService<ITimeZoneResolver>(), NowFactory(sp)));
        services.AddSingleton<IRecurringJobManager>(sp => sp.GetRequiredService<RecurringJobManager>());
        services.AddSingleton<IRecurringJobManagerV2>(sp => sp.GetRequiredService<RecurringJobManager>());
        services.AddHangfire((sp, configuration) => configuration
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings()
            .UseLogProvider(new HostLogProvider(sp.GetRequiredService<ILoggerFactory>())));

        // Recurring jobs first, so the server finds them when it starts.
        services.AddHostedService<RecurringJobsRegistrar>();
        services.AddHangfireServer(CreateServer);
        return services;
    }

    private static Func<DateTime> NowFactory(IServiceProvider services)
    {
        var clock = services.GetRequiredService<TimeProvider>();
        return () => clock.GetUtcNow().UtcDateTime;
    }

    internal static ClockedJobStorage CreateStorage(JobsOptions options)
    {
        if (options.Storage != JobsStorage.PostgreSql)
        {
            return new(new InMemoryStorage(new InMemoryStorageOptions()));
        }

        var postgres = new PostgreSqlStorageOptions
        {
            SchemaName = options.PostgreSqlSchema,
            PrepareSchemaIfNecessary = true,
            QueuePollInterval = options.PollingInterval,
            DistributedLockTimeout = HangfireLockTimeout,
        };

        // Hangfire.PostgreSql creates its schema when the storage is made; instances starting together would race on
        // CREATE SCHEMA (a unique-key error in one of them). A session-level advisory lock makes them take turns.
        using var connection = new NpgsqlConnection(options.PostgreSqlConnectionString);
        connection.Open();
        using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({SchemaLockKey})", connection))
        {
            take.ExecuteNonQuery();
        }

        try
        {
            return new(new PostgreSqlStorage(new NpgsqlConnectionFactory(options.PostgreSqlConnectionString!, postgres, null), postgres), options.PostgreSqlConnectionString);
        }
        finally
        {
            using var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({SchemaLockKey})", connection);
            release.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// How old a lock row of Hangfire.PostgreSql must be before another instance may remove it: 1 minute (the library's default is
    /// 10). Only Hangfire's own locks are rows (the recurring-job scheduler's, the delayed-job scheduler's, each job's state lock,
    /// the expiration manager's), each held for milliseconds to seconds; run locks are session locks (<see cref="RunLocks"/>). A row
    /// whose holder's session died with a PostgreSQL restart is never deleted by it, and blocked its resource this long: with the
    /// default, no recurring job was scheduled for 10 minutes after PostgreSQL came back (found by the chaos suite's PostgreSQL outage).
    /// </summary>
    internal static readonly TimeSpan HangfireLockTimeout = TimeSpan.FromMinutes(1);

    /// <summary>The advisory-lock key under which jobs hosts prepare Hangfire's PostgreSQL schema, one at a time.</summary>
    private const long SchemaLockKey = 0x4C616D6264614A6F; // "LambdaJo"

    /// <summary>
    /// Hangfire's server with the same processes as its <c>BackgroundJobServer</c> (workers, delayed-job scheduler,
    /// recurring-job scheduler, and the storage's own processes), except that the recurring-job scheduler reads
    /// the container's clock (see <see cref="ClockedJobStorage"/>): schedules can be tested with a fake clock,
    /// without waiting for the wall clock.
    /// </summary>
    private static BackgroundProcessingServer CreateServer(IServiceProvider services)
    {
        HangfireServiceCollectionExtensions.ThrowIfNotConfigured(services);
        var options = services.GetRequiredService<JobsOptions>();
        var storage = services.GetRequiredService<JobStorage>();
        var filters = services.GetRequiredService<IJobFilterProvider>();
        var timeZones = services.GetRequiredService<ITimeZoneResolver>();
        var factory = new BackgroundJobFactory(filters);
        var performer = new BackgroundJobPerformer(filters, services.GetRequiredService<JobActivator>());
        var stateChanger = new BackgroundJobStateChanger(filters);
        string[] queues = ["default"];
        var processes = new List<IBackgroundProcessDispatcherBuilder>
        {
            new Worker(queues, performer, stateChanger).UseBackgroundPool(options.WorkerCount),
            new DelayedJobScheduler(options.PollingInterval, stateChanger).UseBackgroundPool(1),
            new RecurringJobScheduler(factory, options.PollingInterval, timeZones, NowFactory(services)).UseBackgroundPool(1),
        };
        var properties = new Dictionary<string, object> { ["Queues"] = queues, ["WorkerCount"] = options.WorkerCount };
        return new BackgroundProcessingServer(storage, processes, properties, new BackgroundProcessingServerOptions());
    }
}
