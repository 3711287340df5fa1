using System.CommandLine;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Hosting;
using LambdaPlatform.Hosting.Configuration;
using LambdaPlatform.Jobs;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;
using LambdaPlatform.Serving.Views;

namespace LambdaPlatform.Cli;

/// <summary>
/// The configuration every command reads: <c>--config FILE</c> (or <c>LAMBDA_CONFIG</c>), the environment over it, and the
/// command's flags over both (<see cref="LambdaConfiguration"/>).
/// </summary>
public static class CliSettings
{
    /// <summary>The global <c>--config</c> option, valid on every command.</summary>
    public static Option<string?> ConfigOption { get; } = new("--config")
    {
        Description = $"Configuration file (JSON; default: env {LambdaConfiguration.FileVariable}, else none). Environment variables LAMBDA_<SECTION>__<KEY> override it; flags override both",
        Recursive = true,
    };

    /// <summary>The global <c>--log-format text|json</c> option, valid on every command (over <c>telemetry.logFormat</c>).</summary>
    public static Option<string?> LogFormatOption { get; } = new("--log-format")
    {
        Description = "Console log format: text, or json (one object a line, with trace and span ids); default: telemetry.logFormat, else text",
        Recursive = true,
    };

    /// <summary>
    /// The telemetry of a process in <paramref name="role"/> (<c>up</c>, <c>serve</c>, <c>speed</c>, <c>archive</c>): <c>telemetry.*</c>,
    /// with <c>--log-format</c> over it.
    /// </summary>
    /// <exception cref="CliException">The log format is neither text nor json.</exception>
    public static TelemetryOptions Telemetry(LambdaSettings settings, ParseResult result, string role)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(result);
        var format = result.GetValue(LogFormatOption) ?? settings.Telemetry.LogFormat;
        if (format is not ("text" or "json"))
        {
            throw new CliException($"--log-format must be text or json, not '{format}'");
        }

        return new TelemetryOptions
        {
            OtlpEndpoint = settings.Telemetry.OtlpEndpoint,
            OtlpProtocol = settings.Telemetry.OtlpProtocol,
            JsonLogs = format == "json",
            ServiceName = settings.Telemetry.ServiceName,
            Role = role,
        };
    }

    /// <summary>The settings of the file named by <c>--config</c> (or <c>LAMBDA_CONFIG</c>) with the environment laid over it.</summary>
    /// <exception cref="CliException">The file or a variable is wrong; the message names the file, line and key.</exception>
    public static LambdaSettings Load(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        try
        {
            return LambdaConfiguration.Load(LambdaConfiguration.ResolveFile(result.GetValue(ConfigOption)));
        }
        catch (ConfigurationFileException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>
    /// The ClickHouse server to write to: the connection string of <paramref name="option"/> (named <paramref name="optionName"/>) when
    /// given, else the configured one, else null.
    /// </summary>
    public static ClickHouseServerOptions? Writer(LambdaSettings settings, string? option, string optionName = "--clickhouse")
    {
        ArgumentNullException.ThrowIfNull(settings);
        return option is { Length: > 0 } ? ServerConnection.Options(option, optionName) : settings.ClickHouse.Writer();
    }

    /// <summary>API keys: <c>LAMBDA_API_KEYS</c> and the keys file (<paramref name="file"/>, else <c>http.apiKeysFile</c>, else <c>LAMBDA_API_KEYS_FILE</c>).</summary>
    public static ApiKeys ApiKeys(LambdaSettings settings, string? file)
    {
        ArgumentNullException.ThrowIfNull(settings);
        try
        {
            return Serving.Security.ApiKeys.Load(Environment.GetEnvironmentVariable(Serving.Security.ApiKeys.EnvironmentVariable),
                file ?? settings.Http.ApiKeysFile ?? Environment.GetEnvironmentVariable(Serving.Security.ApiKeys.FileEnvironmentVariable));
        }
        catch (ArgumentException e)
        {
            throw new CliException(Hosting.PlatformHost.OneLine(e));
        }
    }

    /// <summary>The view cache and staleness settings of <c>http.*</c> and the speed layer's group.</summary>
    public static (ViewsApiOptions Views, PipelineStateOptions Pipeline) Api(LambdaSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return (new ViewsApiOptions { CacheTtl = TimeSpan.FromSeconds(settings.Http.CacheSeconds), StatusTtl = TimeSpan.FromSeconds(settings.Http.CacheSeconds) },
            new PipelineStateOptions { PollInterval = TimeSpan.FromSeconds(settings.Http.ChangePollSeconds), SpeedGroup = settings.Speed.Group });
    }

    /// <summary>The HTTP limits of <c>http.*</c>, with the flags' values when given.</summary>
    public static HttpLimits Limits(LambdaSettings settings, long? maxSqlBody = null, long? maxConnections = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new HttpLimits { MaxSqlBodyBytes = maxSqlBody ?? settings.Http.MaxSqlBodyBytes, MaxConcurrentConnections = maxConnections ?? settings.Http.MaxConnections };
    }

    /// <summary>The jobs' settings of <c>jobs.*</c> and <c>postgres.*</c> (PostgreSQL storage when a server is configured).</summary>
    public static JobsOptions Jobs(LambdaSettings settings, IEnumerable<string> views)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(views);
        var schedules = new Dictionary<string, string>(StringComparer.Ordinal);
        if (settings.Jobs.Schedule is { } every)
        {
            foreach (var view in views)
            {
                schedules[view] = every;
            }
        }

        foreach (var (view, cron) in settings.Jobs.Schedules)
        {
            schedules[view] = cron;
        }

        return new JobsOptions
        {
            Storage = settings.Postgres.IsConfigured ? JobsStorage.PostgreSql : JobsStorage.InMemory,
            PostgreSqlConnectionString = settings.Postgres.ConnectionString(),
            PostgreSqlSchema = settings.Postgres.Schema,
            PollingInterval = TimeSpan.FromSeconds(settings.Jobs.PollingIntervalSeconds),
            WorkerCount = settings.Jobs.Workers,
            CompactionCron = settings.Jobs.CompactionCron,
            ViewSchedules = schedules,
        };
    }
}
