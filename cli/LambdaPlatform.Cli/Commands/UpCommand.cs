using System.CommandLine;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Serving;
using LambdaPlatform.Serving.Security;

namespace LambdaPlatform.Cli.Commands;

/// <summary><c>lambda up</c>: everything in one process on embedded defaults.</summary>
public static class UpCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var data = new Option<string>("--data") { Description = "Data folder (chDB data, endpoints.json)", DefaultValueFactory = _ => ".lambda" };
        var http = new Option<string>("--http") { Description = "HTTP listen address host:port", DefaultValueFactory = _ => "127.0.0.1:5080" };
        var demo = new Option<bool>("--demo") { Description = "Also generate realistic demo events" };
        var rate = new Option<int>("--rate") { Description = "Demo events per second", DefaultValueFactory = _ => 2000 };
        var partitions = new Option<int>("--partitions") { Description = "Partitions of the events topic", DefaultValueFactory = _ => 4 };
        var kafkaPort = new Option<int?>("--kafka-port") { Description = "Fixed port for the dev broker (default: a free port)" };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the shipped schemas/views)" };
        var keysFile = new Option<string?>("--api-keys-file")
        {
            Description = $"File of API keys the HTTP API requires, one a line (also: env {ApiKeys.EnvironmentVariable}, comma-separated, and {ApiKeys.FileEnvironmentVariable}); none: the API is open",
        };
        var maxSqlBody = new Option<long>("--max-sql-body") { Description = "Largest body of POST /v1/sql in bytes (larger gets 413)", DefaultValueFactory = _ => new HttpLimits().MaxSqlBodyBytes };
        var maxConnections = new Option<long>("--max-connections") { Description = "Open HTTP connections accepted at once", DefaultValueFactory = _ => new HttpLimits().MaxConcurrentConnections };
        var command = new Command("up", "Run the whole platform in one process: dev broker, chDB, speed layer, HTTP API")
        {
            data, http, demo, rate, partitions, kafkaPort, viewsDir, keysFile, maxSqlBody, maxConnections,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = new UpOptions
            {
                DataDirectory = result.GetValue(data)!,
                Http = result.GetValue(http)!,
                DemoRate = result.GetValue(demo) ? result.GetValue(rate) : 0,
                Partitions = result.GetValue(partitions),
                KafkaPort = result.GetValue(kafkaPort),
                ViewsDirectory = result.GetValue(viewsDir),
                ApiKeys = LoadApiKeys(result.GetValue(keysFile)),
                HttpLimits = new HttpLimits { MaxSqlBodyBytes = result.GetValue(maxSqlBody), MaxConcurrentConnections = result.GetValue(maxConnections) },
            };
            await using var host = await PlatformHost.StartAsync(options, cancellationToken);
            await stdout.WriteLineAsync($"""
                LambdaPlatform is up.
                  kafka bootstrap : {host.Endpoints.Kafka}
                  http api        : {host.Endpoints.Http}   (/health, /metrics, POST /v1/sql)
                  clickhouse      : {host.Endpoints.ClickHouse}
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

    /// <summary>Keys from <c>LAMBDA_API_KEYS</c>, the file of <paramref name="file"/> (or <c>LAMBDA_API_KEYS_FILE</c>).</summary>
    private static ApiKeys LoadApiKeys(string? file)
    {
        try
        {
            return ApiKeys.Load(Environment.GetEnvironmentVariable(ApiKeys.EnvironmentVariable), file ?? Environment.GetEnvironmentVariable(ApiKeys.FileEnvironmentVariable));
        }
        catch (ArgumentException e)
        {
            throw new CliException(PlatformHost.OneLine(e));
        }
    }
}
