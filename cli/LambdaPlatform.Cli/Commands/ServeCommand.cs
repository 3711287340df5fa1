using System.CommandLine;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Jobs;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda serve [--config F] [--http host:port] [--no-api] [--no-jobs]</c>: the HTTP API (views, SQL, health, metrics, OpenAPI)
/// and the scheduled jobs (Hangfire server and dashboard, PostgreSQL storage) against a ClickHouse server. Stateless: run any
/// number behind a load balancer.
/// </summary>
public static class ServeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var http = new Option<string?>("--http") { Description = "HTTP listen address host:port (default: http.listen, else 127.0.0.1:5080)" };
        var clickHouse = new Option<string?>("--clickhouse") { Description = "ClickHouse server connection string (default: the config's clickhouse.*, or env LAMBDA_CLICKHOUSE)" };
        var postgres = new Option<string?>("--postgres") { Description = "Npgsql connection string of the jobs' PostgreSQL (default: the config's postgres.*)" };
        var data = new Option<string?>("--data") { Description = "Data folder holding the master dataset, shared with the archiver (default: the config's data)" };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the config's views, else the shipped schemas/views)" };
        var keysFile = new Option<string?>("--api-keys-file") { Description = "File of API keys, one a line (default: http.apiKeysFile, env LAMBDA_API_KEYS_FILE)" };
        var noApi = new Option<bool>("--no-api") { Description = "Do not serve the HTTP API (only /health, /metrics and the jobs)" };
        var noJobs = new Option<bool>("--no-jobs") { Description = "Do not run the scheduled jobs (the API only)" };
        var command = new Command("serve", "Serve the HTTP API and run the scheduled jobs against a ClickHouse server (any number of instances behind a load balancer)")
        {
            http, clickHouse, postgres, data, viewsDir, keysFile, noApi, noJobs,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = CliSettings.Load(result);
            var writer = CliSettings.Writer(settings, result.GetValue(clickHouse))
                ?? throw new CliException("--clickhouse is required (or clickhouse.host in the configuration file, or LAMBDA_CLICKHOUSE with the connection string)");
            var viewsFolder = result.GetValue(viewsDir) ?? settings.Views;
            var views = ViewLoader.LoadAll(viewsFolder ?? ViewLoader.DefaultDirectory(), EventSchemaRegistry.LoadDefault());
            var jobs = CliSettings.Jobs(settings, views.Select(v => v.Name));
            if (result.GetValue(postgres) is { Length: > 0 } connection)
            {
                jobs = jobs with { Storage = JobsStorage.PostgreSql, PostgreSqlConnectionString = connection };
            }

            var (viewsApi, pipeline) = CliSettings.Api(settings);
            var options = new ServeOptions
            {
                ClickHouse = writer,
                ClickHouseReader = result.GetValue(clickHouse) is { Length: > 0 } ? null : settings.ClickHouse.Reader(),
                Http = result.GetValue(http) ?? settings.Http.Listen,
                Api = !result.GetValue(noApi),
                Jobs = !result.GetValue(noJobs),
                DataDirectory = result.GetValue(data) ?? settings.Data,
                ViewsDirectory = viewsFolder,
                JobsOptions = jobs,
                ApiKeys = CliSettings.ApiKeys(settings, result.GetValue(keysFile)),
                HttpLimits = CliSettings.Limits(settings),
                ViewsApi = viewsApi,
                Pipeline = pipeline,
                Telemetry = CliSettings.Telemetry(settings, result, "serve"),
            };

            await using var host = await ServeHost.StartAsync(options, cancellationToken);
            await stdout.WriteLineAsync(
                $"lambda serve on http://{options.Http}: api {(options.Api ? "on" : "off")}, jobs {(options.Jobs ? "on (PostgreSQL " + settings.Postgres + ")" : "off")}; "
                + $"ClickHouse {writer}; {(options.ApiKeys.IsEmpty ? "no API keys (open)" : $"{options.ApiKeys.Count} API key(s)")}; Ctrl-C stops");
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
}
