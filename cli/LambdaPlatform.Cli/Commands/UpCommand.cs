using System.CommandLine;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda up</c>: everything in one process — on embedded defaults (dev broker, chDB), or against the servers of the
/// configuration file or flags (<c>--kafka</c>, <c>--clickhouse</c>; PostgreSQL for the jobs from <c>postgres.*</c>).
/// </summary>
public static class UpCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var data = new Option<string?>("--data") { Description = "Data folder (chDB data, the master dataset, endpoints.json; default: the config's data, else .lambda)" };
        var http = new Option<string?>("--http") { Description = "HTTP listen address host:port (default: the config's http.listen, else 127.0.0.1:5080)" };
        var demo = new Option<bool>("--demo") { Description = "Also generate realistic demo events" };
        var rate = new Option<int>("--rate") { Description = "Demo events per second", DefaultValueFactory = _ => 2000 };
        var partitions = new Option<int?>("--partitions") { Description = "Partitions of the dev broker's events topic (default: kafka.partitions, else 4)" };
        var kafkaPort = new Option<int?>("--kafka-port") { Description = "Fixed port for the dev broker (default: a free port)" };
        var kafka = new Option<string?>("--kafka") { Description = "Kafka bootstrap servers of a real cluster (default: kafka.bootstrapServers; without either, the dev broker in this process)" };
        var clickHouse = new Option<string?>("--clickhouse")
        {
            Description = "ClickHouse server connection string, e.g. Host=127.0.0.1;Port=8123;User=writer (default: the config's clickhouse.*; without either, embedded chDB)",
        };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the config's views, else the shipped schemas/views)" };
        var keysFile = new Option<string?>("--api-keys-file")
        {
            Description = $"File of API keys the HTTP API requires, one a line (also: http.apiKeysFile, env {ApiKeys.EnvironmentVariable}, comma-separated, and {ApiKeys.FileEnvironmentVariable}); none: the API is open",
        };
        var maxSqlBody = new Option<long?>("--max-sql-body") { Description = "Largest body of POST /v1/sql in bytes (larger gets 413; default http.maxSqlBodyBytes, else 1 MiB)" };
        var maxConnections = new Option<long?>("--max-connections") { Description = "Open HTTP connections accepted at once (default http.maxConnections, else 1,000)" };
        var command = new Command("up", "Run the whole platform in one process: speed layer, archiver, batch jobs, HTTP API (embedded dev broker and chDB unless servers are configured)")
        {
            data, http, demo, rate, partitions, kafkaPort, kafka, clickHouse, viewsDir, keysFile, maxSqlBody, maxConnections,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = CliSettings.Load(result);
            var (viewsApi, pipeline) = CliSettings.Api(settings);
            var viewsFolder = result.GetValue(viewsDir) ?? settings.Views;
            var writer = CliSettings.Writer(settings, result.GetValue(clickHouse));
            var views = Schemas.Views.ViewLoader.LoadAll(viewsFolder ?? Schemas.Views.ViewLoader.DefaultDirectory(), Schemas.Events.EventSchemaRegistry.LoadDefault());
            var options = new UpOptions
            {
                DataDirectory = result.GetValue(data) ?? settings.Data,
                Http = result.GetValue(http) ?? settings.Http.Listen,
                DemoRate = result.GetValue(demo) ? result.GetValue(rate) : 0,
                Partitions = result.GetValue(partitions) ?? settings.Kafka.Partitions,
                KafkaPort = result.GetValue(kafkaPort),
                Kafka = result.GetValue(kafka) ?? settings.Kafka.BootstrapServers,
                ClickHouse = writer,
                ClickHouseReader = writer is null ? null : settings.ClickHouse.Reader(),
                ViewsDirectory = viewsFolder,
                ApiKeys = CliSettings.ApiKeys(settings, result.GetValue(keysFile)),
                HttpLimits = CliSettings.Limits(settings, result.GetValue(maxSqlBody), result.GetValue(maxConnections)),
                Jobs = CliSettings.Jobs(settings, views.Select(v => v.Name)),
                SpeedGroup = settings.Speed.Group,
                ArchiveGroup = settings.Archive.Group,
                ArchiveMaxFileAge = TimeSpan.FromSeconds(settings.Archive.MaxFileAgeSeconds),
                ViewsApi = viewsApi,
                ChangePollInterval = pipeline.PollInterval,
                Telemetry = CliSettings.Telemetry(settings, result, "up"),
            };
            await using var host = await PlatformHost.StartAsync(options, cancellationToken);
            await stdout.WriteLineAsync($"""
                LambdaPlatform is up.
                  kafka bootstrap : {host.Endpoints.Kafka}
                  http api        : {host.Endpoints.Http}   (/health, /metrics, POST /v1/sql)
                  clickhouse      : {host.Endpoints.ClickHouse}
                  jobs            : {(options.Jobs.Storage == Jobs.JobsStorage.PostgreSql ? "PostgreSQL " + settings.Postgres : "in memory")} (dashboard /hangfire)
                  endpoints file  : {Path.Combine(host.DataDirectory, Endpoints.FileName)}
                  api keys        : {(options.ApiKeys.IsEmpty ? "none" : $"{options.ApiKeys.Count} configured (send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'; /health is open)")}
                {(options.DemoRate > 0 ? $"  demo traffic    : {options.DemoRate} events/s" : "  demo traffic    : off (lambda up --demo)")}

                Query it from another terminal:
                  ./lambda sql "SELECT eventType, count() FROM events GROUP BY eventType ORDER BY eventType"
                Send your own events:
                  ./lambda produce --file events.jsonl
                Ctrl-C stops.
                """);
            if (options.ApiKeys.IsEmpty)
            {
                await stdout.WriteLineAsync(OpenApiWarning(options.Http));
            }

            // The web host's ConsoleLifetime takes SIGINT, SIGTERM and SIGQUIT once it has started: it cancels the
            // default termination and only stops the application, so wait for that as well as for the invocation's
            // token (System.CommandLine 2.0.0 cancels it on signals only when ProcessTerminationTimeout is set).
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, host.App.Lifetime.ApplicationStopping);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                await stdout.WriteLineAsync("stopping…");
            }

            return 0;
        });
        return command;
    }

    /// <summary>The line <c>lambda up</c> prints when no API key is configured.</summary>
    public static string OpenApiWarning(string http) =>
        $"warning: no API keys configured ({ApiKeys.EnvironmentVariable}, {ApiKeys.FileEnvironmentVariable} or --api-keys-file): "
        + $"the HTTP API on {http} is open to anyone who can reach it (the jobs dashboard and batch runs to local requests only)";

}
