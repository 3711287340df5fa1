namespace LambdaPlatform.Hosting.Configuration;

/// <summary>
/// A setting of the configuration file or of an environment variable is wrong. The message names where (file and line,
/// or the variable), the key and the problem, on one line, e.g.
/// <c>/etc/lambda/lambda.json: line 7: clickhouse.prot: unknown key (known: host, port, …)</c>. Never quotes a secret.
/// </summary>
public sealed class ConfigurationFileException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConfigurationFileException()
        : this("the configuration is invalid")
    {
    }

    /// <summary>Creates the exception with its message.</summary>
    public ConfigurationFileException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its message and cause.</summary>
    public ConfigurationFileException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The key, dotted (e.g. <c>clickhouse.port</c>), when the problem is one key's.</summary>
    public string? Key { get; init; }

    /// <summary>The line of the file (1-based), when the problem is in the file.</summary>
    public int? Line { get; init; }
}
