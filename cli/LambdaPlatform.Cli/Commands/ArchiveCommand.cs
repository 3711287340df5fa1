using System.CommandLine;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Schemas.Events;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda archive --kafka ... --data ... [--http host:port]</c>: the archiver alone, writing the Parquet master dataset
/// from a Kafka cluster. With <c>--http</c> it serves <c>/health</c> (503 with the reason while publications fail) and
/// <c>/metrics</c> (Prometheus: events archived, publication failures, the partitions assigned and the events buffered
/// and not yet published).
/// </summary>
public static class ArchiveCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var kafka = new Option<string>("--kafka") { Description = "Kafka bootstrap servers", Required = true };
        var data = new Option<string>("--data") { Description = "Root folder of the master dataset (master/ is created under it)", Required = true };
        var group = new Option<string>("--group") { Description = "Consumer group (instances in one group share partitions)", DefaultValueFactory = _ => "archive" };
        var maxFileAge = new Option<double>("--max-file-age") { Description = "Seconds after which a partition's open file is published", DefaultValueFactory = _ => 15 };
        var http = new Option<string?>("--http") { Description = "Serve /health and /metrics on host:port, e.g. 127.0.0.1:5082 (default: no HTTP)" };
        var command = new Command("archive", "Run the archiver alone: events from Kafka into immutable Parquet files of the master dataset") { kafka, data, group, maxFileAge, http };
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

            var listen = result.GetValue(http);
            if (listen is not null && !SpeedCommand.IsHostPort(listen))
            {
                throw new CliException($"--http must be host:port, e.g. 127.0.0.1:5082, not '{listen}'");
            }

            static void AddArchiver(IServiceCollection services, ArchiverOptions options)
            {
                services.AddSingleton(options);
                services.AddSingleton(EventSchemaRegistry.LoadDefault());
                services.AddSingleton<ArchiverMetrics>();
                services.AddSingleton<Archiver>();
                services.AddHostedService(sp => sp.GetRequiredService<Archiver>());
            }

            var banner = $"archiver consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}' into {options.RootPath}";
            if (listen is null)
            {
                var builder = Host.CreateApplicationBuilder();
                AddArchiver(builder.Services, options);
                using var host = builder.Build();
                var exit = WorkerExit.Watch(host.Services, "archiver");
                await stdout.WriteLineAsync(banner + "; Ctrl-C stops");
                await host.RunAsync(cancellationToken);
                exit.ThrowIfFailed();
                return 0;
            }

            var web = WebApplication.CreateSlimBuilder();
            web.WebHost.UseUrls("http://" + listen);
            AddArchiver(web.Services, options);
            web.Services.AddHealthChecks().AddCheck<ArchiverHealthCheck>("archiver");
            web.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(ArchiverMetrics.MeterName).AddPrometheusExporter());
            await using var app = web.Build();
            var appExit = WorkerExit.Watch(app.Services, "archiver");
            SpeedCommand.MapHealth(app);
            app.MapPrometheusScrapingEndpoint("/metrics");
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (IOException e)
            {
                throw new CliException($"cannot listen on {listen}: {e.Message} (choose another with --http)");
            }

            await stdout.WriteLineAsync($"{banner}; health on http://{listen}/health; Ctrl-C stops");
            await app.WaitForShutdownAsync(cancellationToken);
            appExit.ThrowIfFailed();
            return 0;
        });
        return command;
    }

    private sealed class ArchiverHealthCheck(Archiver archiver) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(archiver.Health.Healthy ? HealthCheckResult.Healthy(archiver.Health.Status) : HealthCheckResult.Unhealthy(archiver.Health.Status));
    }
}
