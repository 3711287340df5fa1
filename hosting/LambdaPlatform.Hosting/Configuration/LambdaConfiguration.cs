using System.Collections;
using System.Collections.Frozen;
using System.Globalization;
using LambdaPlatform.ClickHouse;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;

namespace LambdaPlatform.Hosting.Configuration;

/// <summary>
/// Reads the platform's one configuration file (JSON, comments allowed) with the .NET configuration providers, lays the
/// environment over it, and checks every key: an unknown key, a bad value or a secret written into the file is reported with
/// the file, line and key (<see cref="ConfigurationFileException"/>).
/// </summary>
/// <remarks>
/// <para>Environment variables override the file: <c>LAMBDA_</c> + the key path with <c>__</c> between sections, e.g.
/// <c>LAMBDA_CLICKHOUSE__HOST</c>, <c>LAMBDA_JOBS__SCHEDULE</c> (the .NET convention; case does not matter). Older variables
/// keep working: <c>LAMBDA_CLICKHOUSE</c> (a connection string), <c>LAMBDA_CLICKHOUSE_PASSWORD</c>, <c>LAMBDA_API_KEYS</c>,
/// <c>LAMBDA_API_KEYS_FILE</c>. Other <c>LAMBDA_</c> variables without <c>__</c> (e.g. <c>LAMBDA_CHDB_LIBRARY</c>) are not
/// settings of this file and are left alone.</para>
/// <para>Secrets — <c>clickhouse.password</c>, <c>clickhouse.readerPassword</c>, <c>postgres.password</c> — are accepted only from
/// the environment; in the file, name a file that holds them (<c>…PasswordFile</c>).</para>
/// </remarks>
public static class LambdaConfiguration
{
    /// <summary>Environment variable naming the configuration file when <c>--config</c> is not given: <c>LAMBDA_CONFIG</c>.</summary>
    public const string FileVariable = "LAMBDA_CONFIG";

    /// <summary>Prefix of the environment variables that override the file: <c>LAMBDA_</c>.</summary>
    public const string EnvironmentPrefix = "LAMBDA_";

    private enum Kind
    {
        Text,
        HostPort,
        HostPortList,
        Port,
        Whole,
        Seconds,
        Protocol,
        Cron,
        Path,
        Secret,
        Identifier,
        Url,
        OtlpProtocol,
        LogFormat,
    }

    /// <summary>Every key of the file (lower-case path) with its spelling, kind and, for whole numbers, range.</summary>
    private static readonly FrozenDictionary<string, (string Name, Kind Kind, long Min, long Max)> Keys = new (string Name, Kind Kind, long Min, long Max)[]
    {
        ("kafka:bootstrapServers", Kind.HostPortList, 0, 0),
        ("kafka:partitions", Kind.Whole, 1, 256),
        ("clickhouse:host", Kind.Text, 0, 0),
        ("clickhouse:port", Kind.Port, 1, 65535),
        ("clickhouse:protocol", Kind.Protocol, 0, 0),
        ("clickhouse:database", Kind.Identifier, 0, 0),
        ("clickhouse:user", Kind.Text, 0, 0),
        ("clickhouse:password", Kind.Secret, 0, 0),
        ("clickhouse:passwordFile", Kind.Path, 0, 0),
        ("clickhouse:readerUser", Kind.Text, 0, 0),
        ("clickhouse:readerPassword", Kind.Secret, 0, 0),
        ("clickhouse:readerPasswordFile", Kind.Path, 0, 0),
        ("clickhouse:timeoutSeconds", Kind.Whole, 1, 86_400),
        ("postgres:host", Kind.Text, 0, 0),
        ("postgres:port", Kind.Port, 1, 65535),
        ("postgres:database", Kind.Text, 0, 0),
        ("postgres:user", Kind.Text, 0, 0),
        ("postgres:password", Kind.Secret, 0, 0),
        ("postgres:passwordFile", Kind.Path, 0, 0),
        ("postgres:schema", Kind.Identifier, 0, 0),
        ("views", Kind.Path, 0, 0),
        ("data", Kind.Path, 0, 0),
        ("http:listen", Kind.HostPort, 0, 0),
        ("http:apiKeysFile", Kind.Path, 0, 0),
        ("http:maxSqlBodyBytes", Kind.Whole, 1024, 1L << 30),
        ("http:maxConnections", Kind.Whole, 1, 1_000_000),
        ("http:cacheSeconds", Kind.Seconds, 0, 3600),
        ("http:changePollSeconds", Kind.Seconds, 0, 60),
        ("speed:group", Kind.Text, 0, 0),
        ("speed:http", Kind.HostPort, 0, 0),
        ("archive:group", Kind.Text, 0, 0),
        ("archive:maxFileAgeSeconds", Kind.Seconds, 0, 86_400),
        ("archive:http", Kind.HostPort, 0, 0),
        ("jobs:schedule", Kind.Cron, 0, 0),
        ("jobs:schedules:*", Kind.Cron, 0, 0),
        ("jobs:pollingIntervalSeconds", Kind.Seconds, 0, 3600),
        ("jobs:workers", Kind.Whole, 1, 100),
        ("jobs:compactionCron", Kind.Cron, 0, 0),
        ("telemetry:otlpEndpoint", Kind.Url, 0, 0),
        ("telemetry:otlpProtocol", Kind.OtlpProtocol, 0, 0),
        ("telemetry:logFormat", Kind.LogFormat, 0, 0),
        ("telemetry:serviceName", Kind.Text, 0, 0),
    }.ToFrozenDictionary(k => k.Name.ToLowerInvariant(), StringComparer.OrdinalIgnoreCase);

    private static readonly FrozenSet<string> Sections = FrozenSet.Create(StringComparer.OrdinalIgnoreCase, "kafka", "clickhouse", "postgres", "http", "speed", "archive", "jobs", "jobs:schedules", "telemetry");

    /// <summary>The configuration file to read: <paramref name="option"/> when given, else <c>LAMBDA_CONFIG</c>, else none.</summary>
    public static string? ResolveFile(string? option, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!string.IsNullOrWhiteSpace(option))
        {
            return option;
        }

        var variables = environment ?? CurrentEnvironment();
        return variables.TryGetValue(FileVariable, out var file) && !string.IsNullOrWhiteSpace(file) ? file : null;
    }

    /// <summary>
    /// Reads <paramref name="file"/> (none when null) and the environment, checks every key and returns the settings.
    /// </summary>
    /// <param name="file">The configuration file, or null for defaults and the environment alone.</param>
    /// <param name="environment">The environment variables; default the process's.</param>
    /// <exception cref="ConfigurationFileException">The file is missing or not JSON, or a key is unknown, has a bad value or is a secret in the file; the message names it.</exception>
    public static LambdaSettings Load(string? file, IReadOnlyDictionary<string, string>? environment = null)
    {
        var variables = environment ?? CurrentEnvironment();
        var builder = new ConfigurationBuilder();
        Dictionary<string, int> lines = new(StringComparer.OrdinalIgnoreCase);
        string? fullPath = null;
        if (file is not null)
        {
            fullPath = Path.GetFullPath(file);
            if (Directory.Exists(fullPath))
            {
                throw new ConfigurationFileException($"{fullPath} is a folder, not a configuration file");
            }

            if (!System.IO.File.Exists(fullPath))
            {
                throw new ConfigurationFileException($"{fullPath}: no such configuration file");
            }

            lines = JsonLines.Read(fullPath);
            builder.AddJsonFile(fullPath, optional: false, reloadOnChange: false);
        }

        var (overrides, sources) = FromEnvironment(variables);
        builder.AddInMemoryCollection(overrides);
        IConfigurationRoot configuration;
        try
        {
            configuration = builder.Build();
        }
        catch (InvalidDataException e)
        {
            throw new ConfigurationFileException($"{fullPath}: {e.InnerException?.Message ?? e.Message}", e);
        }

        var reader = new Reader(configuration, fullPath, lines, sources);
        reader.CheckKeys();
        return reader.Settings();
    }

    /// <summary>The process's environment variables.</summary>
    public static IReadOnlyDictionary<string, string> CurrentEnvironment()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && entry.Value is string value)
            {
                result[key] = value;
            }
        }

        return result;
    }

    /// <summary>The configuration keys set by <c>LAMBDA_*</c> variables, and which variable set each.</summary>
    private static (Dictionary<string, string?> Keys, Dictionary<string, string> Sources) FromEnvironment(IReadOnlyDictionary<string, string> variables)
    {
        var keys = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var sources = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        void Set(string key, string value, string variable)
        {
            keys[key] = value;
            sources[key] = variable;
        }

        // Older variables first, so the sectioned ones (LAMBDA_CLICKHOUSE__HOST …) win over them.
        if (variables.TryGetValue("LAMBDA_CLICKHOUSE", out var connection) && !string.IsNullOrWhiteSpace(connection))
        {
            ClickHouseServerOptions parsed;
            try
            {
                parsed = ClickHouseServerOptions.FromConnectionString(connection);
            }
            catch (ArgumentException e)
            {
                throw new ConfigurationFileException($"LAMBDA_CLICKHOUSE: {e.Message.Split(" (Parameter", 2)[0]}");
            }

            Set("clickhouse:host", parsed.Host, "LAMBDA_CLICKHOUSE");
            Set("clickhouse:port", parsed.Port.ToString(CultureInfo.InvariantCulture), "LAMBDA_CLICKHOUSE");
            Set("clickhouse:protocol", parsed.UseTls ? "https" : "http", "LAMBDA_CLICKHOUSE");
            Set("clickhouse:database", parsed.Database, "LAMBDA_CLICKHOUSE");
            Set("clickhouse:user", parsed.User, "LAMBDA_CLICKHOUSE");
            Set("clickhouse:timeoutSeconds", ((int)parsed.Timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "LAMBDA_CLICKHOUSE");
            if (parsed.Password.Length > 0)
            {
                Set("clickhouse:password", parsed.Password, "LAMBDA_CLICKHOUSE");
            }
        }

        if (variables.TryGetValue("LAMBDA_CLICKHOUSE_PASSWORD", out var password) && password.Length > 0 && !keys.ContainsKey("clickhouse:password"))
        {
            Set("clickhouse:password", password, "LAMBDA_CLICKHOUSE_PASSWORD");
        }

        foreach (var (name, value) in variables.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            if (name.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase) && name.Contains("__", StringComparison.Ordinal))
            {
                Set(name[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal), value, name);
            }
            else if (name.Equals("LAMBDA_DATA", StringComparison.OrdinalIgnoreCase) || name.Equals("LAMBDA_VIEWS", StringComparison.OrdinalIgnoreCase))
            {
                Set(name[EnvironmentPrefix.Length..], value, name);
            }
        }

        return (keys, sources);
    }

    /// <summary>Reads and checks the keys of one configuration.</summary>
    private sealed class Reader(IConfigurationRoot configuration, string? file, Dictionary<string, int> lines, Dictionary<string, string> sources)
    {
        /// <summary>Where a key's value came from, for messages: "file: line N: key" or "VARIABLE (key)".</summary>
        private (string Where, int? Line) Place(string key)
        {
            var dotted = Dotted(key);
            if (sources.TryGetValue(key, out var variable) && !FromFile(key))
            {
                return ($"{variable} ({dotted})", null);
            }

            if (file is not null && lines.TryGetValue(key, out var line))
            {
                return ($"{file}: line {line}: {dotted}", line);
            }

            return (file is null ? dotted : $"{file}: {dotted}", null);
        }

        /// <summary>True when the value in force came from the file (the environment did not override it).</summary>
        private bool FromFile(string key)
        {
            foreach (var provider in configuration.Providers.Reverse())
            {
                if (provider.TryGet(key, out _))
                {
                    return provider is JsonConfigurationProvider;
                }
            }

            return false;
        }

        private ConfigurationFileException Problem(string key, string problem)
        {
            var (where, line) = Place(key);
            return new ConfigurationFileException($"{where}: {problem}") { Key = Dotted(key), Line = line };
        }

        /// <summary>Every key set must be known, and every value of the right kind.</summary>
        public void CheckKeys()
        {
            foreach (var (key, value) in configuration.AsEnumerable().OrderBy(k => lines.TryGetValue(k.Key, out var l) ? l : int.MaxValue).ThenBy(k => k.Key, StringComparer.Ordinal))
            {
                var spec = Spec(key);
                if (spec is null)
                {
                    if (Sections.Contains(key) && value is null)
                    {
                        continue;
                    }

                    var parent = key.Contains(':', StringComparison.Ordinal) ? key[..key.LastIndexOf(':')] : string.Empty;
                    var known = Keys.Values.Select(k => k.Name).Where(n => Parent(n).Equals(parent, StringComparison.OrdinalIgnoreCase)).Select(n => n[(n.LastIndexOf(':') + 1)..])
                        .Concat(parent.Length == 0 ? ["kafka", "clickhouse", "postgres", "http", "speed", "archive", "jobs", "telemetry"] : []).Distinct().Order(StringComparer.Ordinal);
                    throw Problem(key, Sections.Contains(key) ? "must be a section ({ … }), not a value" : $"unknown key (known{(parent.Length == 0 ? string.Empty : " in " + Dotted(parent))}: {string.Join(", ", known)})");
                }

                if (value is null)
                {
                    throw Problem(key, "must be a value, not a section");
                }

                if (spec.Value.Kind == Kind.Secret && FromFile(key))
                {
                    var variable = EnvironmentPrefix + key.Replace(":", "__", StringComparison.Ordinal).ToUpperInvariant();
                    throw Problem(key, $"secrets may not be written in the configuration file: set {variable} or name a file holding it in {Dotted(key)}File");
                }

                if (Check(spec.Value, value) is { } problem)
                {
                    throw Problem(key, problem);
                }
            }
        }

        private static string Parent(string name) => name.Contains(':', StringComparison.Ordinal) ? name[..name.LastIndexOf(':')] : string.Empty;

        private static (string Name, Kind Kind, long Min, long Max)? Spec(string key)
        {
            if (Keys.TryGetValue(key, out var spec))
            {
                return spec;
            }

            return key.StartsWith("jobs:schedules:", StringComparison.OrdinalIgnoreCase) && key.Count(c => c == ':') == 2 ? Keys["jobs:schedules:*"] : null;
        }

        private static string? Check((string Name, Kind Kind, long Min, long Max) spec, string value)
        {
            var shown = value.Length > 64 ? value[..64] + "…" : value;
            switch (spec.Kind)
            {
                case Kind.Text:
                case Kind.Path:
                    return string.IsNullOrWhiteSpace(value) ? "must not be empty" : null;
                case Kind.Identifier:
                    return value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(value[0])
                        ? null : $"'{shown}' must be letters, digits and underscores, not starting with a digit";
                case Kind.HostPort:
                    return HostPort(value) ? null : $"'{shown}' is not host:port (e.g. 127.0.0.1:5080)";
                case Kind.HostPortList:
                    return value.Split(',').All(HostPort) ? null : $"'{shown}' is not a list of host:port[,host:port…]";
                case Kind.Port:
                case Kind.Whole:
                    return long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole) && whole >= spec.Min && whole <= spec.Max
                        ? null : string.Create(CultureInfo.InvariantCulture, $"'{shown}' is not a whole number from {spec.Min:N0} to {spec.Max:N0}");
                case Kind.Seconds:
                    return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > spec.Min && seconds <= spec.Max
                        ? null : string.Create(CultureInfo.InvariantCulture, $"'{shown}' is not a number of seconds above {spec.Min} and at most {spec.Max:N0}");
                case Kind.Protocol:
                    return value is "http" or "https" ? null : $"'{shown}' must be http or https";
                case Kind.Url:
                    return Uri.TryCreate(value, UriKind.Absolute, out var url) && url.Scheme is "http" or "https" && url.Host.Length > 0
                        ? null : $"'{shown}' is not an http(s) URL (e.g. http://otel-collector:4317)";
                case Kind.OtlpProtocol:
                    return value is "grpc" or "http/protobuf" ? null : $"'{shown}' must be grpc or http/protobuf";
                case Kind.LogFormat:
                    return value is "text" or "json" ? null : $"'{shown}' must be text or json";
                case Kind.Cron:
                    try
                    {
                        Jobs.JobsOptions.CheckCron(value, "cron", "cron");
                        return null;
                    }
                    catch (ArgumentException e)
                    {
                        return e.Message.Split(" (Parameter", 2)[0].Replace("cron '", "'", StringComparison.Ordinal);
                    }

                default:
                    return null;
            }
        }

        private static bool HostPort(string text)
        {
            var colon = text.LastIndexOf(':');
            return colon > 0 && !text[..colon].Any(char.IsWhiteSpace)
                && int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535;
        }

        private string? Get(string key) => configuration[key];

        private int Int(string key, int fallback) => Get(key) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        private long Long(string key, long fallback) => Get(key) is { } v ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;

        private double Double(string key, double fallback) => Get(key) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

        /// <summary>A secret: the environment's value, else the file named by <c>key + "File"</c> (trailing line break removed), else empty.</summary>
        private string Secret(string key)
        {
            if (Get(key) is { } direct)
            {
                return direct;
            }

            if (Get(key + "File") is not { } path)
            {
                return string.Empty;
            }

            try
            {
                return System.IO.File.ReadAllText(path).TrimEnd('\r', '\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Problem(key + "File", $"cannot read {Path.GetFullPath(path)}: {e.Message}");
            }
        }

        public LambdaSettings Settings()
        {
            var clickHouse = new ClickHouseSettings();
            var postgres = new PostgresSettings();
            var http = new HttpSettings();
            var speed = new SpeedSettings();
            var archive = new ArchiveSettings();
            var jobs = new JobsSettings();
            var telemetry = new TelemetrySettings();
            var schedules = configuration.GetSection("jobs:schedules").GetChildren().Where(c => c.Value is not null).ToDictionary(c => c.Key, c => c.Value!, StringComparer.Ordinal);
            return new LambdaSettings
            {
                File = file,
                Kafka = new KafkaSettings { BootstrapServers = Get("kafka:bootstrapServers"), Partitions = Int("kafka:partitions", 4) },
                ClickHouse = clickHouse with
                {
                    Host = Get("clickhouse:host"),
                    Port = Int("clickhouse:port", clickHouse.Port),
                    UseTls = Get("clickhouse:protocol") == "https",
                    Database = Get("clickhouse:database") ?? clickHouse.Database,
                    User = Get("clickhouse:user") ?? clickHouse.User,
                    Password = Secret("clickhouse:password"),
                    ReaderUser = Get("clickhouse:readerUser"),
                    ReaderPassword = Secret("clickhouse:readerPassword"),
                    TimeoutSeconds = Int("clickhouse:timeoutSeconds", clickHouse.TimeoutSeconds),
                },
                Postgres = postgres with
                {
                    Host = Get("postgres:host"),
                    Port = Int("postgres:port", postgres.Port),
                    Database = Get("postgres:database") ?? postgres.Database,
                    User = Get("postgres:user") ?? postgres.User,
                    Password = Secret("postgres:password"),
                    Schema = Get("postgres:schema") ?? postgres.Schema,
                },
                Views = Get("views"),
                Data = Get("data") ?? ".lambda",
                Http = http with
                {
                    Listen = Get("http:listen") ?? http.Listen,
                    ApiKeysFile = Get("http:apiKeysFile"),
                    MaxSqlBodyBytes = Long("http:maxSqlBodyBytes", http.MaxSqlBodyBytes),
                    MaxConnections = Long("http:maxConnections", http.MaxConnections),
                    CacheSeconds = Double("http:cacheSeconds", http.CacheSeconds),
                    ChangePollSeconds = Double("http:changePollSeconds", http.ChangePollSeconds),
                },
                Speed = speed with { Group = Get("speed:group") ?? speed.Group, Http = Get("speed:http") },
                Archive = archive with { Group = Get("archive:group") ?? archive.Group, MaxFileAgeSeconds = Double("archive:maxFileAgeSeconds", archive.MaxFileAgeSeconds), Http = Get("archive:http") },
                Jobs = jobs with
                {
                    Schedule = Get("jobs:schedule"),
                    Schedules = schedules.ToFrozenDictionary(StringComparer.Ordinal),
                    PollingIntervalSeconds = Double("jobs:pollingIntervalSeconds", jobs.PollingIntervalSeconds),
                    Workers = Int("jobs:workers", jobs.Workers),
                    CompactionCron = Get("jobs:compactionCron") ?? jobs.CompactionCron,
                },
                Telemetry = telemetry with
                {
                    OtlpEndpoint = Get("telemetry:otlpEndpoint") is { } endpoint ? new Uri(endpoint) : null,
                    OtlpProtocol = Get("telemetry:otlpProtocol") ?? telemetry.OtlpProtocol,
                    LogFormat = Get("telemetry:logFormat") ?? telemetry.LogFormat,
                    ServiceName = Get("telemetry:serviceName") ?? telemetry.ServiceName,
                },
            };
        }

        /// <summary>A configuration path as written in messages: dots between sections, the known spelling.</summary>
        private static string Dotted(string key)
        {
            if (Spec(key) is { } spec && !spec.Name.EndsWith('*'))
            {
                return spec.Name.Replace(':', '.');
            }

            // Sections are lower-case names; the last part as written (a view name, or the unknown key itself).
            var parts = key.Split(':');
            return string.Join('.', parts[..^1].Select(p => p.ToLowerInvariant()).Append(parts[^1]));
        }
    }
}
