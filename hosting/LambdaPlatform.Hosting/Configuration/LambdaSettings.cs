using System.Collections.Frozen;
using System.Globalization;
using LambdaPlatform.ClickHouse;
using Npgsql;

namespace LambdaPlatform.Hosting.Configuration;

/// <summary>
/// Every setting of the platform, as read from the configuration file (<see cref="LambdaConfiguration"/>), overridden by
/// environment variables, then by a command's flags. Secrets (passwords) come only from the environment or from files
/// named here.
/// </summary>
public sealed record LambdaSettings
{
    /// <summary>The configuration file these settings were read from, or null when none.</summary>
    public string? File { get; init; }

    /// <summary>Kafka (<c>kafka.*</c>).</summary>
    public KafkaSettings Kafka { get; init; } = new();

    /// <summary>The serving ClickHouse server (<c>clickhouse.*</c>).</summary>
    public ClickHouseSettings ClickHouse { get; init; } = new();

    /// <summary>PostgreSQL for the scheduled jobs (<c>postgres.*</c>).</summary>
    public PostgresSettings Postgres { get; init; } = new();

    /// <summary>Folder of view definitions (<c>views</c>); null: the shipped <c>schemas/views</c>.</summary>
    public string? Views { get; init; }

    /// <summary>
    /// Data folder (<c>data</c>): the master dataset under <c>master/</c> and batch views under <c>views/</c>, on a filesystem
    /// shared by the archiver and every jobs host (and, for <c>lambda up</c>, chDB's data). Default <c>.lambda</c>.
    /// </summary>
    public string Data { get; init; } = ".lambda";

    /// <summary>The HTTP API (<c>http.*</c>).</summary>
    public HttpSettings Http { get; init; } = new();

    /// <summary>The speed layer (<c>speed.*</c>).</summary>
    public SpeedSettings Speed { get; init; } = new();

    /// <summary>The archiver (<c>archive.*</c>).</summary>
    public ArchiveSettings Archive { get; init; } = new();

    /// <summary>The scheduled jobs (<c>jobs.*</c>).</summary>
    public JobsSettings Jobs { get; init; } = new();

    /// <summary>Traces and logs (<c>telemetry.*</c>).</summary>
    public TelemetrySettings Telemetry { get; init; } = new();
}

/// <summary>Traces and logs: OTLP export and the console log format.</summary>
public sealed record TelemetrySettings
{
    /// <summary>
    /// OTLP endpoint spans and logs are exported to (<c>telemetry.otlpEndpoint</c>), e.g. <c>http://collector:4317</c>; null: the
    /// OpenTelemetry SDK's variables decide (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c> …), without them nothing is exported.
    /// </summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary>OTLP transport (<c>telemetry.otlpProtocol</c>): <c>grpc</c> or <c>http/protobuf</c>. Default <c>grpc</c>.</summary>
    public string OtlpProtocol { get; init; } = "grpc";

    /// <summary>Console log format (<c>telemetry.logFormat</c>): <c>text</c> or <c>json</c> (one object a line). Default <c>text</c>.</summary>
    public string LogFormat { get; init; } = "text";

    /// <summary>The exported <c>service.name</c> (<c>telemetry.serviceName</c>). Default <c>lambda</c>.</summary>
    public string ServiceName { get; init; } = "lambda";

    /// <summary>Describes the settings.</summary>
    public override string ToString() =>
        $"logs {LogFormat}; traces {(OtlpEndpoint is { } e ? $"to {e} ({OtlpProtocol})" : "recorded, exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set")}; service {ServiceName}";
}

/// <summary>Kafka settings.</summary>
public sealed record KafkaSettings
{
    /// <summary>Bootstrap servers, <c>host:port[,host:port…]</c> (<c>kafka.bootstrapServers</c>); null: none configured (<c>lambda up</c> starts its dev broker).</summary>
    public string? BootstrapServers { get; init; }

    /// <summary>Partitions of the topics the dev broker of <c>lambda up</c> creates (<c>kafka.partitions</c>). Default 4.</summary>
    public int Partitions { get; init; } = 4;
}

/// <summary>The serving ClickHouse server. The platform writes as <see cref="User"/>; the API may read as <see cref="ReaderUser"/>.</summary>
public sealed record ClickHouseSettings
{
    /// <summary>Host (<c>clickhouse.host</c>); null: no server configured (<c>lambda up</c> uses embedded chDB).</summary>
    public string? Host { get; init; }

    /// <summary>HTTP(S) port (<c>clickhouse.port</c>). Default 8123.</summary>
    public int Port { get; init; } = 8123;

    /// <summary><c>http</c> or <c>https</c> (<c>clickhouse.protocol</c>). Default <c>http</c>.</summary>
    public bool UseTls { get; init; }

    /// <summary>Database of the platform's tables (<c>clickhouse.database</c>). Default <c>default</c>.</summary>
    public string Database { get; init; } = "default";

    /// <summary>The writing user (<c>clickhouse.user</c>). Default <c>default</c>.</summary>
    public string User { get; init; } = "default";

    /// <summary>Its password: env <c>LAMBDA_CLICKHOUSE__PASSWORD</c> or the file <c>clickhouse.passwordFile</c>. Default empty.</summary>
    public string Password { get; init; } = string.Empty;

    /// <summary>A read-only user the API answers views and <c>/v1/sql</c> with (<c>clickhouse.readerUser</c>); null: the writer.</summary>
    public string? ReaderUser { get; init; }

    /// <summary>Its password: env <c>LAMBDA_CLICKHOUSE__READERPASSWORD</c> or the file <c>clickhouse.readerPasswordFile</c>.</summary>
    public string ReaderPassword { get; init; } = string.Empty;

    /// <summary>Longest wait for one request (<c>clickhouse.timeoutSeconds</c>). Default 300.</summary>
    public int TimeoutSeconds { get; init; } = 300;

    /// <summary>True when a server is configured.</summary>
    public bool IsConfigured => Host is not null;

    /// <summary>Connection options of the writer (null when no server is configured).</summary>
    public ClickHouseServerOptions? Writer() => Host is null ? null : new ClickHouseServerOptions
    {
        Host = Host, Port = Port, UseTls = UseTls, Database = Database, User = User, Password = Password, Timeout = TimeSpan.FromSeconds(TimeoutSeconds),
    };

    /// <summary>Connection options of the reader (null when none is configured).</summary>
    public ClickHouseServerOptions? Reader() => Writer() is { } writer && ReaderUser is { } user ? writer with { User = user, Password = ReaderPassword } : null;

    /// <summary>Describes the settings without passwords.</summary>
    public override string ToString() =>
        Host is null ? "embedded chDB" : string.Create(CultureInfo.InvariantCulture, $"{(UseTls ? "https" : "http")}://{Host}:{Port} database {Database} as {User}{(ReaderUser is null ? string.Empty : ", reads as " + ReaderUser)}");
}

/// <summary>PostgreSQL, where Hangfire keeps jobs, schedules and locks shared by every <c>lambda serve</c>.</summary>
public sealed record PostgresSettings
{
    /// <summary>Host (<c>postgres.host</c>); null: none (jobs keep their state in memory, one process only).</summary>
    public string? Host { get; init; }

    /// <summary>Port (<c>postgres.port</c>). Default 5432.</summary>
    public int Port { get; init; } = 5432;

    /// <summary>Database (<c>postgres.database</c>). Default <c>lambda</c>.</summary>
    public string Database { get; init; } = "lambda";

    /// <summary>User (<c>postgres.user</c>). Default <c>lambda</c>.</summary>
    public string User { get; init; } = "lambda";

    /// <summary>Password: env <c>LAMBDA_POSTGRES__PASSWORD</c> or the file <c>postgres.passwordFile</c>. Default empty.</summary>
    public string Password { get; init; } = string.Empty;

    /// <summary>Schema of Hangfire's tables (<c>postgres.schema</c>). Default <c>hangfire</c>.</summary>
    public string Schema { get; init; } = "hangfire";

    /// <summary>True when a server is configured.</summary>
    public bool IsConfigured => Host is not null;

    /// <summary>The Npgsql connection string (with the password), or null.</summary>
    public string? ConnectionString() => Host is null ? null : new NpgsqlConnectionStringBuilder
    {
        Host = Host, Port = Port, Database = Database, Username = User, Password = Password.Length == 0 ? null : Password, Pooling = true,
    }.ConnectionString;

    /// <summary>Describes the settings without the password.</summary>
    public override string ToString() => Host is null ? "none (jobs in memory)" : string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port}/{Database} as {User}, schema {Schema}");
}

/// <summary>HTTP API settings.</summary>
public sealed record HttpSettings
{
    /// <summary>Listen address <c>host:port</c> (<c>http.listen</c>). Default <c>127.0.0.1:5080</c>.</summary>
    public string Listen { get; init; } = "127.0.0.1:5080";

    /// <summary>File of API keys, one a line (<c>http.apiKeysFile</c>; also env <c>LAMBDA_API_KEYS</c>, <c>LAMBDA_API_KEYS_FILE</c>).</summary>
    public string? ApiKeysFile { get; init; }

    /// <summary>Largest body of <c>POST /v1/sql</c> in bytes (<c>http.maxSqlBodyBytes</c>). Default 1 MiB.</summary>
    public long MaxSqlBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Open connections accepted at once (<c>http.maxConnections</c>). Default 1,000.</summary>
    public long MaxConnections { get; init; } = 1_000;

    /// <summary>Longest time an answer is cached (<c>http.cacheSeconds</c>); change markers drop it earlier. Default 60.</summary>
    public double CacheSeconds { get; init; } = 60;

    /// <summary>How often each API instance reads the change markers and the speed progress (<c>http.changePollSeconds</c>): the staleness bound. Default 1.</summary>
    public double ChangePollSeconds { get; init; } = 1;
}

/// <summary>Speed-layer settings.</summary>
public sealed record SpeedSettings
{
    /// <summary>Consumer group (<c>speed.group</c>); the API reads this group's progress. Default <c>speed</c>.</summary>
    public string Group { get; init; } = "speed";

    /// <summary>Where <c>lambda speed</c> serves <c>/health</c> and <c>/metrics</c> (<c>speed.http</c>); null: no HTTP.</summary>
    public string? Http { get; init; }
}

/// <summary>Archiver settings.</summary>
public sealed record ArchiveSettings
{
    /// <summary>Consumer group (<c>archive.group</c>). Default <c>archive</c>.</summary>
    public string Group { get; init; } = "archive";

    /// <summary>Seconds after which a partition's open file is published (<c>archive.maxFileAgeSeconds</c>). Default 15.</summary>
    public double MaxFileAgeSeconds { get; init; } = 15;

    /// <summary>Where <c>lambda archive</c> serves <c>/health</c> and <c>/metrics</c> (<c>archive.http</c>); null: no HTTP.</summary>
    public string? Http { get; init; }
}

/// <summary>Scheduled-jobs settings.</summary>
public sealed record JobsSettings
{
    /// <summary>Cron (UTC) of every view's recompute (<c>jobs.schedule</c>); null: each view's own <c>batch.schedule</c>.</summary>
    public string? Schedule { get; init; }

    /// <summary>Cron per view name (<c>jobs.schedules.&lt;view&gt;</c>), over <see cref="Schedule"/>.</summary>
    public IReadOnlyDictionary<string, string> Schedules { get; init; } = FrozenDictionary<string, string>.Empty;

    /// <summary>How often schedules and the queue are polled (<c>jobs.pollingIntervalSeconds</c>). Default 15.</summary>
    public double PollingIntervalSeconds { get; init; } = 15;

    /// <summary>Jobs one process runs at once (<c>jobs.workers</c>). Default 2.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>Cron (UTC) of the master-dataset compaction (<c>jobs.compactionCron</c>). Default <c>30 * * * *</c>.</summary>
    public string CompactionCron { get; init; } = "30 * * * *";
}
