using System.CommandLine;
using LambdaPlatform.Cli.Hosting;
using Spectre.Console;

namespace LambdaPlatform.Cli.Commands;

/// <summary><c>lambda produce --file events.jsonl</c>: JSON lines to topic <c>events</c>, keyed by userId, with a progress bar.</summary>
public static class ProduceCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var file = new Option<FileInfo>("--file") { Description = "A file of JSON lines, one event per line", Required = true };
        var kafka = new Option<string?>("--kafka") { Description = "Kafka bootstrap servers (default: from the running `lambda up`)" };
        var data = new Option<string>("--data") { Description = "Data folder of the running `lambda up`", DefaultValueFactory = _ => ".lambda" };
        var command = new Command("produce", "Send events from a JSON-lines file to Kafka") { file, kafka, data };
        command.SetAction(async (result, cancellationToken) =>
        {
            var input = result.GetValue(file)!;
            if (!input.Exists)
            {
                throw new CliException($"--file: {input.FullName} does not exist");
            }

            var bootstrap = result.GetValue(kafka) ?? (await Endpoints.ReadAsync(result.GetValue(data)!, cancellationToken)).Kafka;
            using var producer = new EventProducer(bootstrap);
            long sent = 0;
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
            await console.Progress().AutoClear(false).StartAsync(async progress =>
            {
                var task = progress.AddTask($"producing {input.Name}", maxValue: input.Length);
                await using var stream = input.OpenRead();
                using var reader = new StreamReader(stream);
                while (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    if (line.Length == 0)
                    {
                        continue;
                    }

                    producer.Send(System.Text.Encoding.UTF8.GetBytes(line));
                    sent++;
                    if ((sent & 1023) == 0)
                    {
                        task.Value = stream.Position;
                    }
                }

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
}
