using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.ClickHouse;

namespace LambdaPlatform.Cli;

/// <summary>
/// Where the commands that talk to a ClickHouse server (<c>speed</c>, <c>batch run</c>, <c>sql</c>) get its connection:
/// the option when given, else <c>LAMBDA_CLICKHOUSE</c>; a password missing from the connection string comes from
/// <c>LAMBDA_CLICKHOUSE_PASSWORD</c>. So the writer's credentials come from configuration or the environment and need
/// not appear on a command line.
/// </summary>
public static class ServerConnection
{
    /// <summary>Environment variable with the ClickHouse server connection string: <c>LAMBDA_CLICKHOUSE</c>.</summary>
    public const string Variable = "LAMBDA_CLICKHOUSE";

    /// <summary>Environment variable with the password when the connection string has none: <c>LAMBDA_CLICKHOUSE_PASSWORD</c>.</summary>
    public const string PasswordVariable = ClickHouseServerProcessOptions.WriterPasswordVariable;

    /// <summary>The connection string from <paramref name="option"/> or the environment, or null when neither is set.</summary>
    public static string? Resolve(string? option) =>
        option is { Length: > 0 } ? option : Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;

    /// <summary>Parses <paramref name="connectionString"/> (named <paramref name="source"/> in errors) and adds the password from the environment if it has none.</summary>
    /// <exception cref="CliException">The connection string is malformed.</exception>
    public static ClickHouseServerOptions Options(string connectionString, string source)
    {
        ClickHouseServerOptions options;
        try
        {
            options = ClickHouseServerOptions.FromConnectionString(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"{source}: {e.Message}");
        }

        return options.Password.Length == 0 && Environment.GetEnvironmentVariable(PasswordVariable) is { Length: > 0 } password
            ? options with { Password = password }
            : options;
    }

    /// <summary>A client for <paramref name="connectionString"/> (see <see cref="Options"/>).</summary>
    public static ServerClickHouse Open(string connectionString, string source) => new(Options(connectionString, source));
}
