using System.Net.Http.Json;
using System.Text.Json.Nodes;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.ClickHouse;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// <c>lambda up --clickhouse …</c>: every role in one process, composed by the same helpers as the separate commands, against a
/// clickhouse-server 18.16 (writes as <c>writer</c>, reads as <c>analyst</c>), for small installs.
/// </summary>
public sealed class UpAgainstServerTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private readonly string _data = Path.Combine(Path.GetTempPath(), "lambda-up-server-" + Guid.NewGuid().ToString("N")[..12]);
    private ClickHouseServerProcess _server = null!;
    private PlatformHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await ClickHouseServerProcess.StartAsync();
        _host = await PlatformHost.StartAsync(new UpOptions
        {
            DataDirectory = _data,
            Http = "127.0.0.1:" + Probe.FreePort(),
            Partitions = 2,
            ClickHouse = _server.WriterConnectionOptions,
            ClickHouseReader = _server.AnalystConnectionOptions,
            ArchiveMaxFileAge = TimeSpan.FromSeconds(1),
        });
        _http = new HttpClient { BaseAddress = new Uri(_host.Endpoints.Http) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        await _server.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Up_RunsEveryRoleInOneProcess_WhenGivenAClickHouseServer()
    {
        var now = DateTime.UtcNow;
        var closedDay = now.Date.AddDays(-2);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 5, Users = 100 });
        using (var producer = new EventProducer(_host.Endpoints.Kafka))
        {
            for (var i = 0; i < 200; i++)
            {
                producer.Send(generator.Next("user.action.checkout", closedDay.AddHours(9).AddSeconds(i * 30)).Json);
            }

            for (var i = 0; i < 100; i++)
            {
                producer.Send(generator.Next("user.action.checkout", now.AddMinutes(-10).AddSeconds(i * 5)).Json);
            }

            producer.Flush();
        }

        var range = $"from={Probe.Iso(closedDay)}&to={Probe.Iso(now.Date.AddDays(1))}";
        await Probe.PollAsync(async () => Orders(await AnswerAsync(range)) == 300, Deadline);

        // The rows are in the server, not in chDB; the speed layer's progress too.
        await using var direct = new ServerClickHouse(_server.ConnectionOptions);
        Assert.Equal(300, await Probe.ScalarAsync(direct, "SELECT sum(orders) FROM checkout_revenue"));
        Assert.True(await Probe.ScalarAsync(direct, "SELECT count() FROM lambda_speed_progress") > 0);

        // A batch run through the API moves W past the closed day once the archiver (same process) has it.
        await Probe.PollAsync(async () =>
        {
            using var run = await _http.PostAsJsonAsync("/v1/batch/run", new { view = "checkout_revenue" });
            return run.IsSuccessStatusCode && (await AnswerAsync(range))["watermark"]?.GetValue<string>() == Probe.Iso(closedDay.AddDays(1));
        }, Deadline);
        var answer = await AnswerAsync(range);
        Assert.Equal(300, Orders(answer));
        Assert.All(answer["rows"]!.AsArray().Where(r => r!["bucket"]!.GetValue<string>().CompareTo(Probe.Iso(closedDay.AddDays(1))) < 0),
            r => Assert.Equal("batch", r!["side"]!.GetValue<string>()));

        var pipeline = JsonNode.Parse(await _http.GetStringAsync(new Uri("/v1/pipeline", UriKind.Relative)))!;
        Assert.NotEmpty(pipeline["speed"]!.AsArray());
        Assert.NotEmpty(pipeline["archive"]!.AsArray());
        Assert.Contains(pipeline["batchRuns"]!.AsArray(), r => r!["view"]!.GetValue<string>() == "checkout_revenue" && r["day"]!.GetValue<string>() == closedDay.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
    }

    private async Task<JsonObject> AnswerAsync(string query) =>
        JsonNode.Parse(await _http.GetStringAsync(new Uri($"/v1/views/checkout_revenue?{query}", UriKind.Relative)))!.AsObject();

    private static long Orders(JsonObject answer) => answer["rows"]!.AsArray().Sum(r => r!["orders"]!.GetValue<long>());
}
