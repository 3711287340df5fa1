using System.CommandLine;
using LambdaPlatform.Hosting.Configuration;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda config check [--config F]</c>: reads the configuration file with the environment over it, checks every key and
/// value, the view definitions it names and the views its schedules name, and prints what the commands will use (never a
/// secret). A mistake gives one line naming the file, line and key, and exit code 2.
/// </summary>
public static class ConfigCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var check = new Command("check", "Check the configuration file (and the environment over it): every key, value and view definition; print the settings without secrets");
        check.SetAction(async (result, cancellationToken) =>
        {
            var settings = CliSettings.Load(result);
            var file = settings.File ?? $"no file (--config or {LambdaConfiguration.FileVariable}): defaults and environment only";
            var views = ViewLoader.LoadAll(settings.Views ?? ViewLoader.DefaultDirectory(), EventSchemaRegistry.LoadDefault());
            foreach (var view in settings.Jobs.Schedules.Keys.Where(v => views.All(d => d.Name != v)))
            {
                throw new CliException($"{settings.File}: jobs.schedules.{view}: there is no view '{view}' (views: {string.Join(", ", views.Select(v => v.Name))})");
            }

            await stdout.WriteLineAsync($"""
                ok: {file}
                  kafka       : {settings.Kafka.BootstrapServers ?? "none (lambda up starts its dev broker)"}
                  clickhouse  : {settings.ClickHouse}{(settings.ClickHouse.IsConfigured ? (settings.ClickHouse.Password.Length > 0 ? " (password set)" : " (no password)") : string.Empty)}
                  postgres    : {settings.Postgres}
                  data        : {Path.GetFullPath(settings.Data)}
                  views       : {string.Join(", ", views.Select(v => v.Name))} from {Path.GetFullPath(settings.Views ?? ViewLoader.DefaultDirectory())}
                  http        : {settings.Http.Listen}; cache {settings.Http.CacheSeconds}s, change poll {settings.Http.ChangePollSeconds}s; api keys file {settings.Http.ApiKeysFile ?? "none"}
                  speed       : group {settings.Speed.Group}{(settings.Speed.Http is { } h ? ", health on " + h : string.Empty)}
                  archive     : group {settings.Archive.Group}, files published after {settings.Archive.MaxFileAgeSeconds}s
                  telemetry   : {settings.Telemetry}
                  jobs        : schedule {settings.Jobs.Schedule ?? "each view's batch.schedule"}{string.Concat(settings.Jobs.Schedules.Select(s => $", {s.Key}: {s.Value}"))}; poll {settings.Jobs.PollingIntervalSeconds}s; {settings.Jobs.Workers} workers
                """);
            return 0;
        });
        return new Command("config", "The configuration file every command reads") { check };
    }
}
