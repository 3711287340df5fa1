using System.CommandLine;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Hosting;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda archive [--config F] [--kafka ...] [--data ...] [--http host:port]</c>: the archiver alone, writing the Parquet master
/// dataset from a Kafka cluster. When a ClickHouse server is configured (<c>clickhouse.*</c>, <c>--clickhouse</c>), its progress is
/// recorded there for every other process to read. With <c>--http</c> (or <c>archive.http</c>) it serves <c>/health</c> (503 with
/// the reason while publications fail) and <c>/metrics</c> (Prometheus: events archived, publication failures, the partitions
/// assigned and the events buffered and not yet published).
/// </summary>
public static class ArchiveCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var kafka = new Option<string?>("--kafka") { Description = "Kafka bootstrap servers (default: kafka.bootstrapServers)" };
        var data = new Option<string?>("--data") { Description = "Root folder of the master dataset, master/ is created under it (default: the config's data)" };
        var group = new Option<string?>("--group") { Description = "Consumer group; instances in one group share partitions (default: archive.group, else archive)" };
        var maxFileAge = new Option<double?>("--max-file-age") { Description = "Seconds after which a partition's open file is published (default: archive.maxFileAgeSeconds, else 15)" };
        var clickHouse = new Option<string?>("--clickhouse") { Description = "ClickHouse server to record progress in (default: the config's clickhouse.*; without either, none)" };
        var http = new Option<string?>("--http") { Description = "Serve /health and /metrics on host:port, e.g. 127.0.0.1:5082 (default: archive.http, else no HTTP)" };
        var command = new Command("archive", "Run the archiver alone: events from Kafka into immutable Parquet files of the master dataset") { kafka, data, group, maxFileAge, clickHouse, http };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = CliSettings.Load(result);
            var seconds = result.GetValue(maxFileAge) ?? settings.Archive.MaxFileAgeSeconds;
            if (!(seconds is > 0 and <= 86_400))
            {
                throw new CliException($"--max-file-age must be between 0 and 86400 seconds, not {seconds}");
            }

            var bootstrap = result.GetValue(kafka) ?? settings.Kafka.BootstrapServers
                ?? throw new CliException("--kafka is required (or kafka.bootstrapServers in the configuration file, or LAMBDA_KAFKA__BOOTSTRAPSERVERS)");
            var root = result.GetValue(data) ?? (settings.File is not null || Environment.GetEnvironmentVariable("LAMBDA_DATA") is not null ? settings.Data : null)
                ?? throw new CliException("--data is required (or data in the configuration file)");
            var options = new ArchiverOptions
            {
                BootstrapServers = bootstrap,
                RootPath = Path.GetFullPath(root),
                GroupId = result.GetValue(group) ?? settings.Archive.Group,
                MaxFileAge = TimeSpan.FromSeconds(seconds),
            }.Validate();
            Directory.CreateDirectory(options.RootPath);

            var server = CliSettings.Writer(settings, result.GetValue(clickHouse));
            await using var progress = server is null ? null : new ServerClickHouse(server);
            var schemas = EventSchemaRegistry.LoadDefault();
            var telemetry = CliSettings.Telemetry(settings, result, "archive");
            void Compose(IServiceCollection services)
            {
                if (progress is not null)
                {
                    services.AddLambdaCore(progress, [], schemas);
                }
                else
                {
                    services.AddSingleton(schemas);
                }

                services.AddArchiver(options).AddLambdaTelemetry(telemetry);
            }

            var banner = $"archiver consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}' into {options.RootPath}"
                + (server is null ? string.Empty : $"; progress into {server}");
            var listen = result.GetValue(http) ?? settings.Archive.Http;
            return await WorkerHost.RunAsync("archiver", banner, listen, Compose, stdout, cancellationToken);
        });
        return command;
    }
}
