using System.CommandLine;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Hosting;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda speed [--config F] [--kafka ...] [--clickhouse ...] [--http host:port]</c>: the speed layer alone, against a Kafka
/// cluster and a ClickHouse server. Settings come from the configuration file (<c>kafka.*</c>, <c>clickhouse.*</c>,
/// <c>speed.*</c>, <c>views</c>), the environment (<c>LAMBDA_CLICKHOUSE</c> and friends) and the flags, so the writer's password
/// need not appear on the command line. With <c>--http</c> (or <c>speed.http</c>) it serves <c>/health</c> (503 with the reason
/// while flushes fail) and <c>/metrics</c> (Prometheus).
/// </summary>
public static class SpeedCommand
{
    /// <summary>Environment variable holding the default ClickHouse connection string.</summary>
    public const string ClickHouseEnvironmentVariable = ServerConnection.Variable;

    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var kafka = new Option<string?>("--kafka") { Description = "Kafka bootstrap servers (default: kafka.bootstrapServers)" };
        var clickHouse = new Option<string?>("--clickhouse")
        {
            Description = $"ClickHouse server connection string, e.g. Host=127.0.0.1;Port=8123;Username=writer (default: the config's clickhouse.*, or ${ClickHouseEnvironmentVariable})",
        };
        var group = new Option<string?>("--group") { Description = "Consumer group; instances in one group share partitions (default: speed.group, else speed)" };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the config's views, else the shipped schemas/views)" };
        var http = new Option<string?>("--http") { Description = "Serve /health and /metrics on host:port, e.g. 127.0.0.1:5081 (default: speed.http, else no HTTP)" };
        var command = new Command("speed", "Run the speed layer alone against a Kafka cluster and a ClickHouse server") { kafka, clickHouse, group, viewsDir, http };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = CliSettings.Load(result);
            var bootstrap = result.GetValue(kafka) ?? settings.Kafka.BootstrapServers
                ?? throw new CliException("--kafka is required (or kafka.bootstrapServers in the configuration file, or LAMBDA_KAFKA__BOOTSTRAPSERVERS)");
            var options = new SpeedOptions { BootstrapServers = bootstrap, GroupId = result.GetValue(group) ?? settings.Speed.Group }.Validate();
            var server = CliSettings.Writer(settings, result.GetValue(clickHouse))
                ?? throw new CliException($"--clickhouse is required (or clickhouse.host in the configuration file, or {ClickHouseEnvironmentVariable} with the connection string)");
            var listen = result.GetValue(http) ?? settings.Speed.Http;
            var telemetry = CliSettings.Telemetry(settings, result, "speed");

            // Definitions first: a broken view is reported whether or not ClickHouse is reachable.
            var schemas = EventSchemaRegistry.LoadDefault();
            var views = ViewLoader.LoadAll(result.GetValue(viewsDir) ?? settings.Views ?? ViewLoader.DefaultDirectory(), schemas);
            await using var clickHouseClient = new ClickHouse.ServerClickHouse(server);
            await clickHouseClient.ExecuteAsync("SELECT 1", cancellationToken); // fail fast, with one line, when unreachable

            return await WorkerHost.RunAsync("speed layer", $"speed layer consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}' into {server}", listen,
                services => services.AddLambdaCore(clickHouseClient, views, schemas).AddSpeedLayer(options).AddLambdaTelemetry(telemetry), stdout, cancellationToken);
        });
        return command;
    }
}
