using System.Buffers;
using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using System.Diagnostics;
using Confluent.Kafka;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Hosting;
using LambdaPlatform.Kafka;
using Spectre.Console;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda produce --file events.jsonl</c>: JSON lines to topic <c>events</c>, keyed by userId, with a progress bar.
/// The file is checked first (each non-empty line one complete JSON value in UTF-8): a malformed file is refused with
/// its line number and nothing is sent. Events that are well-formed JSON but break the event schemas are sent, so the
/// speed layer dead-letters them with a reason.
/// </summary>
public static class ProduceCommand
{
    /// <summary>Deepest JSON nesting a line may have (the speed layer rejects more than 32 anyway, with a reason).</summary>
    private const int MaxDepth = 1000;

    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Option<FileInfo>("--file") { Description = "A file of JSON lines, one event per line", Required = true };
        var kafka = new Option<string?>("--kafka") { Description = "Kafka bootstrap servers (default: kafka.bootstrapServers of the configuration, else from the running `lambda up`)" };
        var data = new Option<string>("--data") { Description = "Data folder of the running `lambda up`", DefaultValueFactory = _ => ".lambda" };
        var command = new Command("produce", "Send events from a JSON-lines file to Kafka") { file, kafka, data };
        command.SetAction(async (result, cancellationToken) =>
        {
            var input = result.GetValue(file)!;
            if (!input.Exists)
            {
                throw new CliException($"--file: {input.FullName} does not exist");
            }

            await CheckAsync(input, cancellationToken);
            var bootstrap = result.GetValue(kafka) ?? CliSettings.Load(result).Kafka.BootstrapServers ?? await BootstrapFromDataAsync(result.GetValue(data)!, cancellationToken);
            await EnsureReachableAsync(bootstrap, cancellationToken);

            using var producer = new EventProducer(bootstrap);
            using var tracing = LambdaTelemetry.CreateProducerTracing(CliSettings.Telemetry(CliSettings.Load(result), result, "produce"));
            long sent = 0;
            Activity? span = null;
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
            await console.Progress().AutoClear(false).StartAsync(async progress =>
            {
                var task = progress.AddTask($"producing {input.Name}", maxValue: input.Length);
                await using var stream = input.OpenRead();
                using var reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true));
                while (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    if (line.Length == 0)
                    {
                        continue;
                    }

                    if (span is null)
                    {
                        // One producer span per 1,000 records: they carry its traceparent.
                        span = KafkaTracing.ProducerSource.StartActivity("produce " + input.Name, ActivityKind.Producer);
                        span?.SetTag("messaging.system", "kafka");
                        span?.SetTag("messaging.destination.name", Topics.Events);
                    }

                    producer.Send(Encoding.UTF8.GetBytes(line));
                    sent++;
                    if (sent % 1000 == 0)
                    {
                        span?.SetTag("messaging.batch.message_count", 1000);
                        span?.Dispose();
                        span = null;
                    }

                    if ((sent & 1023) == 0)
                    {
                        task.Value = stream.Position;
                    }
                }

                span?.SetTag("messaging.batch.message_count", (int)(sent % 1000));
                span?.Dispose();
                task.Value = input.Length;
                producer.Flush(cancellationToken);
            });

            if (producer.Failed > 0)
            {
                throw new CliException($"{producer.Failed} of {sent} events were not accepted by Kafka at {bootstrap}: {producer.LastError}");
            }

            await stdout.WriteLineAsync($"sent {producer.Delivered} events to {bootstrap}");
            return 0;
        });
        return command;
    }

    /// <summary>Checks, on the raw bytes, that every non-empty line is UTF-8 and one complete JSON value.</summary>
    /// <exception cref="CliException">The first bad line, as <c>file:line: problem</c>.</exception>
    private static async Task CheckAsync(FileInfo input, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = input.OpenRead();
            var buffer = new byte[1 << 16];
            var line = new ArrayBufferWriter<byte>(1 << 12);
            long lineNumber = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var chunk = buffer.AsMemory(0, read);
                while (chunk.Span.IndexOf((byte)'\n') is var end and >= 0)
                {
                    line.Write(chunk.Span[..end]);
                    Check(input, ++lineNumber, line.WrittenSpan);
                    line.ResetWrittenCount();
                    chunk = chunk[(end + 1)..];
                }

                line.Write(chunk.Span);
            }

            if (line.WrittenCount > 0)
            {
                Check(input, ++lineNumber, line.WrittenSpan);
            }
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"--file: cannot read {input.FullName}: {e.Message}");
        }
    }

    private static void Check(FileInfo input, long lineNumber, ReadOnlySpan<byte> line)
    {
        if (line.EndsWith("\r"u8))
        {
            line = line[..^1];
        }

        if (line.IsEmpty)
        {
            return;
        }

        if (!Utf8.IsValid(line))
        {
            throw new CliException($"{input.FullName}:{lineNumber}: not valid UTF-8");
        }

        if (Problem(line) is { } problem)
        {
            throw new CliException($"{input.FullName}:{lineNumber}: not a JSON line: {problem}");
        }
    }

    private static string? Problem(ReadOnlySpan<byte> line)
    {
        var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = MaxDepth });
        try
        {
            if (!reader.Read())
            {
                return "no JSON value";
            }

            reader.Skip();
            return reader.Read() ? $"more than one JSON value on the line (at column {reader.TokenStartIndex + 1})" : null;
        }
        catch (JsonException e)
        {
            // The reader's message ends with "LineNumber: 0 | BytePositionInLine: N."; say the column instead.
            var message = e.Message;
            var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            var text = cut > 0 ? message[..cut].TrimEnd() : message;
            return e.BytePositionInLine is { } position ? $"{text} (column {position + 1})" : text;
        }
    }

    private static async Task<string> BootstrapFromDataAsync(string dataDirectory, CancellationToken cancellationToken)
    {
        var endpoints = await Endpoints.ReadAsync(dataDirectory, cancellationToken);
        return string.IsNullOrWhiteSpace(endpoints.Kafka)
            ? throw new CliException($"{Path.Combine(Path.GetFullPath(dataDirectory), Endpoints.FileName)}: \"kafka\" is missing (restart `lambda up`, or pass --kafka)")
            : endpoints.Kafka;
    }

    /// <summary>Asks the cluster for its metadata, quietly, so an unreachable broker fails in seconds with one line instead of retrying for minutes.</summary>
    private static async Task EnsureReachableAsync(string bootstrap, CancellationToken cancellationToken)
    {
        string? problem = null;
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap, SocketConnectionSetupTimeoutMs = 5_000 })
            .SetLogHandler((_, message) => problem ??= message.Level <= SyslogLevel.Warning ? message.Message : null)
            .SetErrorHandler((_, error) => problem ??= error.Reason)
            .Build();
        try
        {
            await Task.Run(() => admin.GetMetadata(TimeSpan.FromSeconds(10)), cancellationToken);
        }
        catch (KafkaException e)
        {
            throw new KafkaException(new Error(e.Error.Code, $"cannot reach {bootstrap}: {problem ?? e.Error.Reason}"));
        }
    }
}
