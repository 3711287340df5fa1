using System.Data.Common;
using System.Globalization;

namespace LambdaPlatform.ClickHouse;

/// <summary>Where and how to reach a ClickHouse server over HTTP.</summary>
public sealed record ClickHouseServerOptions
{
    /// <summary>Host name or address. Default <c>127.0.0.1</c>.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>HTTP(S) port. Default 8123.</summary>
    public int Port { get; init; } = 8123;

    /// <summary>User name. Default <c>default</c>.</summary>
    public string User { get; init; } = "default";

    /// <summary>Password. Default empty.</summary>
    public string Password { get; init; } = string.Empty;

    /// <summary>Database that unqualified table names refer to. Default <c>default</c>.</summary>
    public string Database { get; init; } = "default";

    /// <summary>Use HTTPS instead of HTTP. Default false.</summary>
    public bool UseTls { get; init; }

    /// <summary>Longest wait for one request, including a long <c>INSERT ... SELECT</c>. Default 5 minutes.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Rows per HTTP request of a bulk insert (each request is one INSERT). Default 100,000.</summary>
    public int InsertBatchSize { get; init; } = 100_000;

    /// <summary>
    /// Let the server finish a query before it answers (<c>wait_end_of_query=1</c>), so an error raised after the
    /// first rows were produced still arrives as an HTTP error instead of text appended to a 200 response.
    /// The server buffers the result (in memory, then in a temporary file). Default true.
    /// </summary>
    public bool BufferQueryResults { get; init; } = true;

    /// <summary>The base address, e.g. <c>http://127.0.0.1:8123</c>.</summary>
    public string Endpoint => string.Create(CultureInfo.InvariantCulture, $"{(UseTls ? "https" : "http")}://{Host}:{Port}");

    /// <summary>
    /// Reads a connection string such as <c>Host=ch1;Port=8123;User=default;Password=;Database=default</c>.
    /// Keys (case-insensitive): Host (or Server), Port, User (or Username), Password, Database, Protocol
    /// (<c>http</c>/<c>https</c>), Timeout (seconds). Missing keys keep their defaults.
    /// </summary>
    /// <exception cref="ArgumentException">A key is unknown or a value is invalid.</exception>
    public static ClickHouseServerOptions FromConnectionString(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        var options = new ClickHouseServerOptions();
        foreach (string key in builder.Keys)
        {
            var value = Convert.ToString(builder[key], CultureInfo.InvariantCulture) ?? string.Empty;
            options = key.ToUpperInvariant() switch
            {
                "HOST" or "SERVER" => options with { Host = value },
                "PORT" => options with { Port = ParseInt(key, value) },
                "USER" or "USERNAME" => options with { User = value },
                "PASSWORD" => options with { Password = value },
                "DATABASE" => options with { Database = value },
                "PROTOCOL" => options with { UseTls = value.ToUpperInvariant() switch { "HTTP" => false, "HTTPS" => true, _ => throw new ArgumentException($"Protocol must be http or https (was '{value}').", nameof(connectionString)) } },
                "TIMEOUT" => options with { Timeout = TimeSpan.FromSeconds(ParseInt(key, value)) },
                _ => throw new ArgumentException($"Unknown connection string key '{key}'.", nameof(connectionString)),
            };
        }

        options.Validate();
        return options;

        static int ParseInt(string key, string value) =>
            int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                ? number
                : throw new ArgumentException($"Connection string key '{key}' must be a whole number (was '{value}').", nameof(connectionString));
    }

    /// <summary>The connection string for these options (includes the password).</summary>
    public string ToConnectionString() => string.Create(
        CultureInfo.InvariantCulture,
        $"Host={Host};Port={Port};User={User};Password={Password};Database={Database};Protocol={(UseTls ? "https" : "http")};Timeout={(int)Timeout.TotalSeconds}");

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw new ArgumentException("ClickHouseServerOptions.Host must not be empty.", nameof(Host));
        }

        if (Port is < 1 or > 65535)
        {
            throw new ArgumentException($"ClickHouseServerOptions.Port must be 1..65535 (was {Port}).", nameof(Port));
        }

        if (string.IsNullOrWhiteSpace(User))
        {
            throw new ArgumentException("ClickHouseServerOptions.User must not be empty.", nameof(User));
        }

        if (Password is null)
        {
            throw new ArgumentException("ClickHouseServerOptions.Password must not be null (use an empty string).", nameof(Password));
        }

        if (string.IsNullOrWhiteSpace(Database))
        {
            throw new ArgumentException("ClickHouseServerOptions.Database must not be empty.", nameof(Database));
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"ClickHouseServerOptions.Timeout must be positive (was {Timeout}).", nameof(Timeout));
        }

        if (InsertBatchSize < 1)
        {
            throw new ArgumentException($"ClickHouseServerOptions.InsertBatchSize must be at least 1 (was {InsertBatchSize}).", nameof(InsertBatchSize));
        }
    }

    /// <summary>Describes the options without the password.</summary>
    public override string ToString() => $"ClickHouse server {Endpoint} (user {User}, database {Database})";
}
