using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Hosting;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace LambdaPlatform.Cli.Commands;

/// <summary><c>lambda batch run [--view V] [--day D] [--views DIR]</c>: recompute views exactly from the master dataset now.</summary>
public static class BatchCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var view = new Option<string?>("--view") { Description = "Only this view (default: every view)" };
        var day = new Option<string?>("--day") { Description = "Only this day, YYYY-MM-DD (default: every closed or dirty day)" };
        var data = new Option<string?>("--data") { Description = "Data folder (of the running `lambda up`, or to run in this process; default: the config's data, else .lambda)" };
        var clickHouse = new Option<string?>("--clickhouse")
        {
            Description = "Serving ClickHouse server connection string (default: the config's clickhouse.*, or env LAMBDA_CLICKHOUSE; without either, the embedded chDB under --data)",
        };
        var viewsDir = new Option<string?>("--views") { Description = "Folder of view definitions (default: the config's views, else the shipped schemas/views)" };
        var run = new Command("run", "Recompute views now: exact aggregates from the master dataset, swapped into <view>_batch, then W advances") { view, day, data, clickHouse, viewsDir };
        run.SetAction(async (result, cancellationToken) =>
        {
            DateOnly? onlyDay = null;
            if (result.GetValue(day) is { } dayText)
            {
                if (!DateOnly.TryParseExact(dayText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
                {
                    throw new CliException($"--day: '{dayText}' is not a date in the form YYYY-MM-DD");
                }

                onlyDay = parsed;
            }

            var settings = CliSettings.Load(result);
            var dataDirectory = result.GetValue(data) ?? settings.Data;
            var endpointsFile = Path.Combine(dataDirectory, Endpoints.FileName);
            var server = CliSettings.Writer(settings, result.GetValue(clickHouse));
            var viewsFolder = result.GetValue(viewsDir) ?? settings.Views;
            var results = server is null && viewsFolder is null && File.Exists(endpointsFile)
                ? await RunRemoteAsync((await Endpoints.ReadAsync(dataDirectory, cancellationToken)).Http, result.GetValue(view), onlyDay, cancellationToken)
                : await RunHereAsync(dataDirectory, server, viewsFolder, result.GetValue(view), onlyDay, stderr, cancellationToken);
            Print(stdout, results);
            return 0;
        });

        return new Command("batch", "Batch layer: exact views from the master dataset") { run };
    }

    /// <summary>
    /// Runs the recompute in this process, composed like every other role (<see cref="LambdaServiceCollectionExtensions.AddBatch"/>):
    /// chDB reads the Parquet files; the serving tables are in the embedded chDB under the data folder, or in the ClickHouse
    /// server of <paramref name="server"/> (then chDB only computes).
    /// </summary>
    private static async Task<IReadOnlyList<BatchDayResult>> RunHereAsync(string dataDirectory, ClickHouseServerOptions? server, string? viewsFolder, string? view, DateOnly? day,
        TextWriter stderr, CancellationToken cancellationToken)
    {
        var schemas = EventSchemaRegistry.LoadDefault();
        var views = ViewLoader.LoadAll(viewsFolder ?? ViewLoader.DefaultDirectory(), schemas);
        if (view is not null && views.All(v => v.Name != view))
        {
            throw new CliException($"--view: there is no view '{view}' (known: {string.Join(", ", views.Select(v => v.Name))})");
        }

        var root = Path.GetFullPath(dataDirectory);
        await using var serving = server is null ? null : new ServerClickHouse(server);
        await using var engine = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(root, serving is null ? "chdb" : "batch-engine") }, cancellationToken);
        var services = new ServiceCollection().AddLogging();
        services.AddLambdaCore((IClickHouse?)serving ?? engine, views, schemas).AddBatch(new BatchOptions { DataRoot = root }, engine);
        await using var provider = services.BuildServiceProvider();
        var recompute = provider.GetRequiredService<BatchRecompute>();
        IReadOnlyList<BatchDayResult> results = [];
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
        await console.Progress().AutoClear(true).StartAsync(async progress =>
        {
            var task = progress.AddTask("batch recompute", maxValue: 1);
            results = await recompute.RunAsync(view, day, new Progress<BatchProgress>(p =>
            {
                task.MaxValue = p.Total;
                task.Value = p.Done;
                task.Description = p.Current;
            }), cancellationToken);
            task.Value = task.MaxValue;
        });
        return results;
    }

    private static async Task<IReadOnlyList<BatchDayResult>> RunRemoteAsync(string baseUrl, string? view, DateOnly? day, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromHours(2) };
        using var response = await http.PostAsJsonAsync("/v1/batch/run", new { view, day = day?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) }, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new CliException($"batch run failed (HTTP {(int)response.StatusCode}): {body}");
        }

        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement : doc.RootElement.GetProperty("results");
        return [.. root.EnumerateArray().Select(r => new BatchDayResult(
            r.GetProperty("view").GetString()!,
            DateOnly.Parse(r.GetProperty("day").GetString()!, CultureInfo.InvariantCulture),
            r.GetProperty("rowsIn").GetInt64(),
            r.GetProperty("rowsOut").GetInt64(),
            TimeSpan.FromMilliseconds(r.GetProperty("durationMs").GetDouble()),
            r.TryGetProperty("watermark", out var w) && w.ValueKind == JsonValueKind.String ? DateTime.Parse(w.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal) : null,
            r.TryGetProperty("watermarkHeld", out var held) && held.ValueKind == JsonValueKind.String ? held.GetString() : null))];
    }

    private static void Print(TextWriter stdout, IReadOnlyList<BatchDayResult> results)
    {
        if (results.Count == 0)
        {
            stdout.WriteLine("nothing to do: no closed or dirty day needs a recompute");
            return;
        }

        stdout.WriteLine($"{"view",-24} {"day",-10} {"rows in",12} {"rows out",10} {"duration",10}  W");
        foreach (var r in results)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.View,-24} {r.Day:yyyy-MM-dd} {r.RowsIn,12:N0} {r.RowsOut,10:N0} {r.Duration.TotalSeconds,9:F2}s  {(r.Watermark is { } w ? w.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) : "-")}"));
        }

        foreach (var r in results.Where(r => r.WatermarkHeld is not null))
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"W of {r.View} stays before {r.Day:yyyy-MM-dd}: {r.WatermarkHeld}"));
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{results.Select(r => r.Day).Distinct().Count()} days, {results.Sum(r => r.RowsIn):N0} rows in, {results.Sum(r => r.RowsOut):N0} rows out, {results.Sum(r => r.Duration.TotalSeconds):F2}s"));
    }
}
