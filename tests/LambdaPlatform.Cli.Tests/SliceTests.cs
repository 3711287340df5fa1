using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;

namespace LambdaPlatform.Cli.Tests;

/// <summary>The thin slice of `make run`: demo events → Kafka → speed layer → ClickHouse → `lambda sql` and the HTTP API.</summary>
[Collection(PlatformCollection.Name)]
public sealed class SliceTests(PlatformFixture platform)
{
    private async Task<long> CountEventsAsync()
    {
        var (code, output, err) = await platform.LambdaAsync("sql", "SELECT count() FROM events", "--format", "TabSeparated");
        Assert.True(code == 0, err);
        return long.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    private static async Task PollAsync(Func<Task<bool>> condition)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(60), "condition not met before the deadline");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task LambdaSql_ShowsEventsGrowing()
    {
        await PollAsync(async () => await CountEventsAsync() > 0);
        var first = await CountEventsAsync();
        await PollAsync(async () => await CountEventsAsync() > first);
        var (code, output, _) = await platform.LambdaAsync("sql", "SELECT eventType, count() FROM events GROUP BY eventType ORDER BY eventType");
        Assert.Equal(0, code);
        Assert.Contains("user.action.checkout", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(platform.DataDirectory, "endpoints.json")));
    }

    [Fact]
    public async Task Health_IsHealthy_AndMetricsExportSpeedCounters()
    {
        await PollAsync(async () => (await platform.Http.GetAsync("/health")).StatusCode == HttpStatusCode.OK
            && (await platform.Http.GetStringAsync("/metrics")).Contains("lambda_speed_events_in", StringComparison.Ordinal));
        var health = JsonDocument.Parse(await platform.Http.GetStringAsync("/health")).RootElement;
        Assert.Equal("Healthy", health.GetProperty("status").GetString());
    }

    [Fact]
    public async Task ViewsApi_ServesRealtimeRows()
    {
        var list = JsonDocument.Parse(await platform.Http.GetStringAsync("/v1/views")).RootElement.GetProperty("views");
        Assert.Contains(list.EnumerateArray(), v => v.GetProperty("name").GetString() == "checkout_revenue");
        await PollAsync(async () =>
        {
            var body = JsonDocument.Parse(await platform.Http.GetStringAsync("/v1/views/activity_by_type")).RootElement;
            return body.GetProperty("rows").GetArrayLength() > 0;
        });
        var answer = JsonDocument.Parse(await platform.Http.GetStringAsync("/v1/views/activity_by_type")).RootElement;
        var row = answer.GetProperty("rows")[0];
        Assert.Equal("realtime", row.GetProperty("side").GetString());
        Assert.True(row.GetProperty("events").GetInt64() > 0);
        Assert.EndsWith("Z", row.GetProperty("bucket").GetString(), StringComparison.Ordinal);
    }
}
