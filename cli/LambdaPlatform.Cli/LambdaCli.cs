using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Confluent.Kafka;
using LambdaPlatform.Cli.Commands;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Validation;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Hosting.Configuration;

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
            ServeCommand.Create(stdout),
            ConfigCommand.Create(stdout),
        };
        root.Options.Add(CliSettings.ConfigOption);
        root.Options.Add(CliSettings.LogFormatOption);

        var parsed = root.Parse(args);
        if (FirstProblem(parsed) is { } problem)
        {
            await stderr.WriteLineAsync("lambda: " + problem);
            return UsageError;
        }

        if (parsed.Errors.Count > 0)
        {
            // An unknown word explains more than what is missing because of it ("Required command was not provided").
            var error = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parsed.Errors[0];
            await stderr.WriteLineAsync($"lambda: {error.Message} (see `lambda --help`)");
            return UsageError;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(10) }, cancellationToken);
        }
        catch (Exception e) when (OneLine(e) is { } message)
        {
            await stderr.WriteLineAsync("lambda: " + message);
            return e is CliException or SchemaLoadException or ArgumentException or ConfigurationFileException ? UsageError : Failure;
        }
    }

    /// <summary>The one-line message for an error a user can act on; null for a bug (which keeps its trace).</summary>
    private static string? OneLine(Exception e) => e switch
    {
        OperationCanceledException => "cancelled",
        CliException or SchemaLoadException or ServiceFailedException or ConfigurationFileException => e.Message,
        ArgumentException a => WithoutParameter(a),
        ClickHouseException ch => ch.ErrorCode is { } code ? $"ClickHouse error {code}: {FirstLine(ch.Message)}" : FirstLine(ch.Message),
        KafkaException k => $"Kafka error: {k.Error.Reason}",
        DevBrokerException d => d.Message,
        HttpRequestException h => $"cannot reach the platform's HTTP API: {h.Message}",
        IOException io => io.Message,
        UnauthorizedAccessException ua => ua.Message,
        _ => null,
    };

    /// <summary>An <see cref="ArgumentException"/>'s message without the " (Parameter 'x')" suffix, on one line.</summary>
    private static string WithoutParameter(ArgumentException e)
    {
        var message = e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", string.Empty, StringComparison.Ordinal) : e.Message;
        return FirstLine(message);
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOf('\n', StringComparison.Ordinal);
        return end < 0 ? text : text[..end].TrimEnd();
    }

    /// <summary>
    /// Checks the values of options that several commands share, by option name, so every command names a bad
    /// value the same way ("--port: '70000' is not a port (1-65535)") before anything starts: a bad address must
    /// not start a platform that then listens somewhere else, or hang on a server that cannot exist.
    /// </summary>
    private static string? FirstProblem(ParseResult parsed)
    {
        for (var command = parsed.CommandResult; command is not null; command = command.Parent as CommandResult)
        {
            foreach (var option in command.Children.OfType<OptionResult>())
            {
                if (option.Implicit || option.Tokens.Count == 0)
                {
                    continue;
                }

                var name = option.Option.Name;
                var text = option.Tokens[^1].Value;
                if (Check(name, text) is { } problem)
                {
                    return $"{name}: {problem}";
                }
            }
        }

        return null;
    }

    private static string? Check(string option, string text) => option switch
    {
        "--port" or "--kafka-port" => Port(text) is null ? $"'{text}' is not a port (1-65535)" : null,
        "--partitions" => Whole(text, 1, 256) ? null : $"'{text}' is not a partition count (1-256)",
        "--brokers" => Whole(text, 1, 64) ? null : $"'{text}' is not a broker count (1-64)",
        "--rate" => Whole(text, 0, 1_000_000) ? null : $"'{text}' is not a rate in events/s (0-1,000,000)",
        "--http" => HostPort(text) ? null : $"'{text}' is not a listen address host:port (e.g. 127.0.0.1:5080)",
        "--kafka" => text.Split(',').All(HostPort) ? null : $"'{text}' is not a list of Kafka bootstrap servers host:port[,host:port...]",
        "--clickhouse" => ConnectionString(text),
        "--url" => Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? null : $"'{text}' is not an http(s) address",
        "--file" => Directory.Exists(text) ? $"{Path.GetFullPath(text)} is a folder, not a file" : File.Exists(text) ? null : $"{Path.GetFullPath(text)} does not exist",
        "--views" => File.Exists(text) ? $"{Path.GetFullPath(text)} is a file, not a folder of view definitions" : Directory.Exists(text) ? null : $"{Path.GetFullPath(text)} does not exist",
        "--data" => File.Exists(text) ? $"{Path.GetFullPath(text)} is a file, not a data folder" : null,
        "--group" => string.IsNullOrWhiteSpace(text) ? "a consumer group name must not be empty" : null,
        "--config" => Directory.Exists(text) ? $"{Path.GetFullPath(text)} is a folder, not a configuration file" : File.Exists(text) ? null : $"{Path.GetFullPath(text)} does not exist",
        _ => null,
    };

    private static int? Port(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535 ? port : null;

    private static bool Whole(string text, int min, int max) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max;

    private static bool HostPort(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && !string.IsNullOrWhiteSpace(text[..colon]) && !text[..colon].Any(char.IsWhiteSpace) && Port(text[(colon + 1)..]) is not null;
    }

    private static string? ConnectionString(string text)
    {
        try
        {
            ClickHouseServerOptions.FromConnectionString(text);
            return null;
        }
        catch (ArgumentException e)
        {
            return WithoutParameter(e);
        }
    }
}
