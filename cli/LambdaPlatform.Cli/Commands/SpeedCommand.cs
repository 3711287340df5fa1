using System.CommandLine;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Cli.Commands;

/// <summary><c>lambda speed --kafka ... --clickhouse ...</c>: the speed layer alone, against a real Kafka and ClickHouse server.</summary>
public static class SpeedCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var kafka = new Option<string>("--kafka") { Description = "Kafka bootstrap servers", Required = true };
        var clickHouse = new Option<string>("--clickhouse") { Description = "ClickHouse server connection string, e.g. Host=127.0.0.1;Port=8123;Username=writer;Password=...", Required = true };
        var group = new Option<string>("--group") { Description = "Consumer group (instances in one group share partitions)", DefaultValueFactory = _ => "speed" };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the shipped schemas/views)" };
        var command = new Command("speed", "Run the speed layer alone against a Kafka cluster and a ClickHouse server") { kafka, clickHouse, group, viewsDir };
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = new SpeedOptions { BootstrapServers = result.GetValue(kafka)!, GroupId = result.GetValue(group)! }.Validate();
            await using var server = ServerClickHouse.FromConnectionString(result.GetValue(clickHouse)!);
            await server.ExecuteAsync("SELECT 1", cancellationToken); // fail fast, with one line, when unreachable
            var schemas = EventSchemaRegistry.LoadDefault();

            var builder = Host.CreateApplicationBuilder();
            builder.Services.AddSingleton<IClickHouse>(server);
            builder.Services.AddSingleton<SpeedMetrics>();
            var views = ViewLoader.LoadAll(result.GetValue(viewsDir) ?? ViewLoader.DefaultDirectory(), schemas);
            builder.Services.AddHostedService(sp => new SpeedConsumer(options, schemas,
                SpeedSinks.Create(server, views, schemas, sp.GetRequiredService<SpeedMetrics>()),
                sp.GetRequiredService<SpeedMetrics>(), sp.GetRequiredService<ILogger<SpeedConsumer>>()));
            using var host = builder.Build();
            await stdout.WriteLineAsync($"speed layer consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}'; Ctrl-C stops");
            await host.RunAsync(cancellationToken);
            return 0;
        });
        return command;
    }
}
