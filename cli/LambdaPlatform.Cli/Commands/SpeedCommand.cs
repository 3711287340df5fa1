using System.CommandLine;
using System.Globalization;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda speed --kafka ... [--clickhouse ...] [--http host:port]</c>: the speed layer alone, against a real Kafka
/// and ClickHouse server. The connection string defaults to the <c>LAMBDA_CLICKHOUSE</c> environment variable, so the
/// writer's password need not appear on the command line. With <c>--http</c> it serves <c>/health</c> (503 with the
/// reason while flushes fail) and <c>/metrics</c> (Prometheus).
/// </summary>
public static class SpeedCommand
{
    /// <summary>Environment variable holding the default ClickHouse connection string.</summary>
    public const string ClickHouseEnvironmentVariable = ServerConnection.Variable;

    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var kafka = new Option<string>("--kafka") { Description = "Kafka bootstrap servers", Required = true };
        var clickHouse = new Option<string?>("--clickhouse")
        {
            Description = $"ClickHouse server connection string, e.g. Host=127.0.0.1;Port=8123;Username=writer;Password=... (default: ${ClickHouseEnvironmentVariable})",
        };
        var group = new Option<string>("--group") { Description = "Consumer group (instances in one group share partitions)", DefaultValueFactory = _ => "speed" };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the shipped schemas/views)" };
        var http = new Option<string?>("--http") { Description = "Serve /health and /metrics on host:port, e.g. 127.0.0.1:5081 (default: no HTTP)" };
        var command = new Command("speed", "Run the speed layer alone against a Kafka cluster and a ClickHouse server") { kafka, clickHouse, group, viewsDir, http };
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = new SpeedOptions { BootstrapServers = result.GetValue(kafka)!, GroupId = result.GetValue(group)! }.Validate();
            var connectionString = ServerConnection.Resolve(result.GetValue(clickHouse));
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new CliException($"--clickhouse is required (or set {ClickHouseEnvironmentVariable} to the connection string)");
            }

            var listen = result.GetValue(http);
            if (listen is not null && !IsHostPort(listen))
            {
                throw new CliException($"--http must be host:port, e.g. 127.0.0.1:5081, not '{listen}'");
            }

            // Definitions first: a broken view is reported whether or not ClickHouse is reachable.
            var schemas = EventSchemaRegistry.LoadDefault();
            var views = ViewLoader.LoadAll(result.GetValue(viewsDir) ?? ViewLoader.DefaultDirectory(), schemas);
            await using var server = ServerConnection.Open(connectionString, result.GetValue(clickHouse) is { Length: > 0 } ? "--clickhouse" : ServerConnection.Variable);
            await server.ExecuteAsync("SELECT 1", cancellationToken); // fail fast, with one line, when unreachable

            void AddSpeedLayer(IServiceCollection services)
            {
                services.AddSingleton<IClickHouse>(server);
                services.AddSingleton<SpeedMetrics>();
                services.AddSingleton(sp => new SpeedConsumer(options, schemas,
                    SpeedSinks.Create(server, views, schemas, sp.GetRequiredService<SpeedMetrics>()),
                    sp.GetRequiredService<SpeedMetrics>(), sp.GetRequiredService<ILogger<SpeedConsumer>>()));
                services.AddHostedService(sp => sp.GetRequiredService<SpeedConsumer>());
            }

            if (listen is null)
            {
                var builder = Host.CreateApplicationBuilder();
                AddSpeedLayer(builder.Services);
                using var host = builder.Build();
                var exit = WorkerExit.Watch(host.Services, "speed layer");
                await stdout.WriteLineAsync($"speed layer consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}'; Ctrl-C stops");
                await host.RunAsync(cancellationToken);
                exit.ThrowIfFailed();
                return 0;
            }

            var web = WebApplication.CreateSlimBuilder();
            web.WebHost.UseUrls("http://" + listen);
            AddSpeedLayer(web.Services);
            web.Services.AddHealthChecks().AddCheck<SpeedHealthCheck>("speed");
            web.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(SpeedMetrics.MeterName).AddPrometheusExporter());
            await using var app = web.Build();
            var appExit = WorkerExit.Watch(app.Services, "speed layer");
            MapHealth(app);
            app.MapPrometheusScrapingEndpoint("/metrics");
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (IOException e)
            {
                throw new CliException($"cannot listen on {listen}: {e.Message} (choose another with --http)");
            }

            await stdout.WriteLineAsync($"speed layer consuming {options.Topic} from {options.BootstrapServers} as group '{options.GroupId}'; health on http://{listen}/health; Ctrl-C stops");
            await app.WaitForShutdownAsync(cancellationToken);
            appExit.ThrowIfFailed();
            return 0;
        });
        return command;
    }

    internal static bool IsHostPort(string value)
    {
        var colon = value.LastIndexOf(':');
        return colon > 0 && int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535;
    }

    internal static void MapHealth(WebApplication app) =>
        app.MapHealthChecks("/health", new HealthCheckOptions
        {
            ResponseWriter = async (context, report) =>
            {
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsJsonAsync(new
                {
                    status = report.Status.ToString(),
                    checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
                });
            },
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        });

    private sealed class SpeedHealthCheck(SpeedConsumer consumer) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var health = consumer.Health;
            var description = $"{health.Status}; last flush {(health.LastFlushAt is { } at ? at.ToString("O", CultureInfo.InvariantCulture) : "never")}";
            return Task.FromResult(health.Healthy ? HealthCheckResult.Healthy(description) : HealthCheckResult.Unhealthy(description));
        }
    }
}
