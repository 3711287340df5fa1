using System.Collections.Frozen;
using Cronos;
using Npgsql;

namespace LambdaPlatform.Jobs;

/// <summary>Where Hangfire keeps its jobs, schedules and locks.</summary>
public enum JobsStorage
{
    /// <summary>In the process's memory: the embedded default (<c>lambda up</c>). Lost on exit; one process only.</summary>
    InMemory,

    /// <summary>A PostgreSQL database: production; survives restarts and is shared by every jobs host.</summary>
    PostgreSql,
}

/// <summary>
/// Settings of the scheduled jobs (batch recompute per view, master-dataset compaction), their Hangfire server
/// and the dashboard. Validated when <see cref="JobsServiceCollectionExtensions.AddLambdaJobs"/> is called; every
/// error names the setting.
/// </summary>
public sealed record JobsOptions
{
    /// <summary>Path of the Hangfire dashboard: <c>/hangfire</c>.</summary>
    public const string DashboardPath = "/hangfire";

    /// <summary>Header that carries the API key: <c>X-Api-Key</c>.</summary>
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>Shortest accepted <see cref="ApiKey"/>, in characters: 16.</summary>
    public const int MinApiKeyLength = 16;

    /// <summary>Job storage. Default <see cref="JobsStorage.InMemory"/>.</summary>
    public JobsStorage Storage { get; init; } = JobsStorage.InMemory;

    /// <summary>Npgsql connection string of the database; required when <see cref="Storage"/> is <see cref="JobsStorage.PostgreSql"/>.</summary>
    public string? PostgreSqlConnectionString { get; init; }

    /// <summary>Schema of Hangfire's tables in PostgreSQL, created when missing. Default <c>hangfire</c>.</summary>
    public string PostgreSqlSchema { get; init; } = "hangfire";

    /// <summary>Jobs this process runs at the same time (1–100). Default 2: runs of one view never overlap anyway.</summary>
    public int WorkerCount { get; init; } = 2;

    /// <summary>
    /// How often the schedulers look for due recurring and delayed jobs, and how often PostgreSQL storage polls its
    /// queue (100 ms–1 h). Default 15 s: a scheduled run starts at most that late.
    /// </summary>
    public TimeSpan PollingInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Cron expression (UTC) of the master-dataset compaction. Default <c>30 * * * *</c> (every hour at :30).</summary>
    public string CompactionCron { get; init; } = "30 * * * *";

    /// <summary>
    /// Days the compaction looks at (1–366): today and the days before it, plus any day changed within that many days
    /// (late events). Default 2.
    /// </summary>
    public int CompactionDays { get; init; } = 2;

    /// <summary>
    /// Cron expression (UTC) per view name, overriding the view's own <c>batch.schedule</c>. Default none. A name that
    /// is not a view fails the start-up.
    /// </summary>
    public IReadOnlyDictionary<string, string> ViewSchedules { get; init; } = FrozenDictionary<string, string>.Empty;

    /// <summary>
    /// How long a batch run waits for another run of the same view (scheduled or <c>POST /v1/batch/run</c>, in this or
    /// another process sharing the storage) to finish before it gives up. Default 1 hour.
    /// </summary>
    public TimeSpan RunLockTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// API key that authorises dashboard changes and batch runs when sent in <c>X-Api-Key</c>; at least 16 characters.
    /// Default none: then only local requests are authorised. With a key, local requests without it see a read-only
    /// dashboard; other requests without it are refused.
    /// </summary>
    public string? ApiKey { get; init; }

    /// <summary>Throws when a setting is invalid, naming it.</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A setting is invalid; the message and parameter name say which.</exception>
    public JobsOptions Validate()
    {
        if (!Enum.IsDefined(Storage))
        {
            throw new ArgumentOutOfRangeException(nameof(Storage), Storage, "JobsOptions.Storage must be InMemory or PostgreSql");
        }

        if (Storage == JobsStorage.PostgreSql)
        {
            if (string.IsNullOrWhiteSpace(PostgreSqlConnectionString))
            {
                throw new ArgumentException("JobsOptions.PostgreSqlConnectionString is required when Storage is PostgreSql", nameof(PostgreSqlConnectionString));
            }

            try
            {
                _ = new NpgsqlConnectionStringBuilder(PostgreSqlConnectionString);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"JobsOptions.PostgreSqlConnectionString is not a valid connection string: {e.Message}", nameof(PostgreSqlConnectionString), e);
            }

            if (string.IsNullOrEmpty(PostgreSqlSchema) || !PostgreSqlSchema.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') || char.IsAsciiDigit(PostgreSqlSchema[0]))
            {
                throw new ArgumentException($"JobsOptions.PostgreSqlSchema '{PostgreSqlSchema}' must be lower-case letters, digits and underscores, not starting with a digit", nameof(PostgreSqlSchema));
            }
        }

        if (WorkerCount is < 1 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(WorkerCount), WorkerCount, "JobsOptions.WorkerCount must be between 1 and 100");
        }

        if (PollingInterval < TimeSpan.FromMilliseconds(100) || PollingInterval > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(PollingInterval), PollingInterval, "JobsOptions.PollingInterval must be between 100 ms and 1 hour");
        }

        CheckCron(CompactionCron, "JobsOptions.CompactionCron", nameof(CompactionCron));
        if (CompactionDays is < 1 or > 366)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactionDays), CompactionDays, "JobsOptions.CompactionDays must be between 1 and 366");
        }

        ArgumentNullException.ThrowIfNull(ViewSchedules, nameof(ViewSchedules));
        foreach (var (view, cron) in ViewSchedules)
        {
            if (string.IsNullOrWhiteSpace(view))
            {
                throw new ArgumentException("JobsOptions.ViewSchedules has an empty view name", nameof(ViewSchedules));
            }

            CheckCron(cron, $"JobsOptions.ViewSchedules[{view}]", nameof(ViewSchedules));
        }

        if (RunLockTimeout < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RunLockTimeout), RunLockTimeout, "JobsOptions.RunLockTimeout must not be negative");
        }

        if (ApiKey is not null && (ApiKey.Length < MinApiKeyLength || ApiKey.Any(char.IsWhiteSpace)))
        {
            throw new ArgumentException($"JobsOptions.ApiKey must be at least {MinApiKeyLength} characters without white space (or unset)", nameof(ApiKey));
        }

        return this;
    }

    /// <summary>
    /// Parses a cron expression the way Hangfire does: five fields (minute hour day month weekday), or six with
    /// seconds first. Throws <see cref="ArgumentException"/> naming <paramref name="setting"/> when invalid.
    /// </summary>
    public static CronExpression CheckCron(string? cron, string setting, string parameterName)
    {
        if (string.IsNullOrWhiteSpace(cron))
        {
            throw new ArgumentException($"{setting} must be a cron expression, e.g. \"0 * * * *\"", parameterName);
        }

        var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        if (fields is not (5 or 6))
        {
            throw new ArgumentException($"{setting} '{cron}' must have 5 fields (minute hour day month weekday) or 6 (seconds first)", parameterName);
        }

        try
        {
            return CronExpression.Parse(cron, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            throw new ArgumentException($"{setting} '{cron}' is not a valid cron expression: {e.Message}", parameterName, e);
        }
    }
}
