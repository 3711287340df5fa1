using System.CommandLine;
using LambdaPlatform.Kafka;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Cli.Commands;

/// <summary><c>lambda dev-broker</c>: the embedded Kafka (librdkafka's mock cluster) as a standalone process.</summary>
public static class DevBrokerCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var brokers = new Option<int>("--brokers") { Description = "Number of brokers", DefaultValueFactory = _ => 1 };
        var port = new Option<int?>("--port") { Description = "Fixed port of the first broker (default: a free port)" };
        var partitions = new Option<int>("--partitions") { Description = "Partitions of the events and events.dlq topics", DefaultValueFactory = _ => 4 };
        var command = new Command("dev-broker", "Run an in-memory Kafka broker for development; any Kafka client can use it") { brokers, port, partitions };
        command.SetAction(async (result, cancellationToken) =>
        {
            var count = result.GetValue(brokers);
            var firstPort = result.GetValue(port);
            if (firstPort is { } first && first + count - 1 > 65535)
            {
                throw new CliException($"--port: {count} brokers starting at port {first} would need ports up to {first + count - 1}, beyond 65535");
            }

            var options = new DevBrokerOptions
            {
                BrokerCount = count,
                Ports = firstPort is { } p ? [.. Enumerable.Range(p, count)] : null,
                Topics = [new DevBrokerTopic(Topics.Events, result.GetValue(partitions)), new DevBrokerTopic(Topics.DeadLetter, result.GetValue(partitions))],
            };
            try
            {
                await DevBrokerHost.RunAsync(options, broker => stdout.WriteLine($"dev broker up: bootstrap servers {broker.BootstrapServers} (topics: {Topics.Events}, {Topics.DeadLetter}); Ctrl-C stops"), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                await stdout.WriteLineAsync("dev broker stopped");
            }

            return 0;
        });
        return command;
    }
}
