using System.CommandLine;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Cli.Commands;

/// <summary><c>lambda archive --kafka ... --data ...</c>: the archiver alone, writing the Parquet master dataset from a Kafka cluster.</summary>
public static class ArchiveCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var kafka = new Option<string>("--kafka") { Description = "Kafka bootstrap servers", Required = true };
        var data = new Option<string>("--data") { Description = "Root folder of the master dataset (master/ is created under it)", Required = true };
        var group = new Option<string>("--group") { Description = "Consumer group (instances in one group share partitions)", DefaultValueFactory = _ => "archive" };
        var maxFileAge = new Option<double>("--max-file-age") { Description = "Seconds after which a partition's open file is published", DefaultValueFactory = _ => 15 };
        var command = new Command("archive", "Run the archiver alone: events from Kafka into immutable Parquet files of the master dataset") { kafka, data, group, maxFileAge };
        command.SetAction(async (result, cancellationToken) =>
        {
            var seconds = result.GetValue(maxFileAge);
            if (!(seconds is > 0 and <= 86_400))
            {
                throw new CliException($"--max-file-age must be between 0 and 86400 seconds, not {seconds}");
            }

            var options = new ArchiverOptions
            {
                BootstrapServers = result.GetValue(kafka)!,
                RootPath = Path.GetFullPath(result.GetValue(data)!),
                GroupId = result.GetValue(group)!,
                MaxFileAge = TimeSpan.FromSeconds(seconds),
            }.Validate();
            Directory.CreateDirectory(options.RootPath);

            var builder = Host.CreateApplicationBuilder();
            builder.Services.AddSingleton(options);
            builder.Services.AddSingleton(EventSchemaRegistry.LoadDefault());
            builder.Services.AddSingleton<ArchiverMetrics>();
            builder.Services.AddHostedService<Archiver>();
            using var host = builder.Build();
            var exit = WorkerExit.Watch(host.Services, "archiver");
            await stdout.WriteLineAsync($"archiver consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}' into {options.RootPath}; Ctrl-C stops");
            await host.RunAsync(cancellationToken);
            exit.ThrowIfFailed();
            return 0;
        });
        return command;
    }
}
