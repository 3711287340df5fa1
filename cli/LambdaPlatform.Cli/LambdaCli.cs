using System.CommandLine;
using Confluent.Kafka;
using LambdaPlatform.Cli.Commands;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Cli;

/// <summary>
/// Parses the command line and runs a command. Mistakes (bad arguments, unreachable servers, bad
/// files) print one line to stderr and exit non-zero; no stack traces.
/// </summary>
public static class LambdaCli
{
    /// <summary>Exit code for a usage or input error.</summary>
    public const int UsageError = 2;

    /// <summary>Exit code for a runtime failure (unreachable server, failed query).</summary>
    public const int Failure = 1;

    /// <summary>Runs the tool with <paramref name="args"/>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("LambdaPlatform: a Lambda-architecture analytics platform (speed layer, batch layer, serving layer).")
        {
            UpCommand.Create(stdout),
            DevBrokerCommand.Create(stdout),
            ProduceCommand.Create(stdout, stderr),
            SqlCommand.Create(stdout),
            SpeedCommand.Create(stdout),
            ArchiveCommand.Create(stdout),
            BatchCommand.Create(stdout, stderr),
        };

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            await stderr.WriteLineAsync($"lambda: {parsed.Errors[0].Message} (see `lambda --help`)");
            return UsageError;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(10) }, cancellationToken);
        }
        catch (Exception e) when (OneLine(e) is { } message)
        {
            await stderr.WriteLineAsync("lambda: " + message);
            return e is CliException or SchemaLoadException or ArgumentException ? UsageError : Failure;
        }
    }

    /// <summary>The one-line message for an error a user can act on; null for a bug (which keeps its trace).</summary>
    private static string? OneLine(Exception e) => e switch
    {
        OperationCanceledException => "cancelled",
        CliException or SchemaLoadException or ArgumentException => e.Message,
        ClickHouseException ch => ch.ErrorCode is { } code ? $"ClickHouse error {code}: {FirstLine(ch.Message)}" : FirstLine(ch.Message),
        KafkaException k => $"Kafka error: {k.Error.Reason}",
        DevBrokerException d => d.Message,
        HttpRequestException h => $"cannot reach the platform's HTTP API: {h.Message}",
        IOException io => io.Message,
        UnauthorizedAccessException ua => ua.Message,
        _ => null,
    };

    private static string FirstLine(string text)
    {
        var end = text.IndexOf('\n', StringComparison.Ordinal);
        return end < 0 ? text : text[..end].TrimEnd();
    }
}
