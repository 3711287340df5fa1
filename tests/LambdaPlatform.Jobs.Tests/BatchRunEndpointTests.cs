using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LambdaPlatform.Jobs.Tests;

/// <summary><c>POST /v1/batch/run</c> and the dashboard on a real Kestrel host.</summary>
[Collection(JobsCollection.Name)]
public sealed class BatchRunEndpointTests(JobsFixture fixture)
{
    private static readonly DateOnly Day = new(2024, 5, 1);

    // 2024-05-01 is closed (day end + 1 h lateness is past); the frozen clock never reaches the next cron instant.
    private readonly FakeClock _clock = new(new DateTimeOffset(2024, 5, 3, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task Run_ReturnsAReportPerViewDay_AndAdvancesW()
    {
        var root = fixture.NewDataRoot();
        var view = fixture.NewCheckoutView();
        await JobsFixture.WriteCheckoutsAsync(root, Day, hour: 9, firstOffset: 0, count: 12);
        await using var host = await TestHost.StartAsync(fixture.ClickHouse, [view], new JobsOptions(), root, _clock);

        using var response = await host.Http.PostAsJsonAsync("/v1/batch/run", new { view = view.Name, day = "2024-05-01" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var result = Assert.Single(body.RootElement.GetProperty("results").EnumerateArray());
        Assert.Equal(view.Name, result.GetProperty("view").GetString());
        Assert.Equal("2024-05-01", result.GetProperty("day").GetString());
        Assert.Equal(12, result.GetProperty("rowsIn").GetInt64());
        Assert.Equal(12, result.GetProperty("rowsOut").GetInt64()); // one (minute, store) bucket per event
        Assert.True(result.GetProperty("durationMs").GetInt64() >= 0);
        Assert.Equal("2024-05-02T00:00:00Z", result.GetProperty("watermark").GetString());
        Assert.Equal(new DateTime(2024, 5, 2), await fixture.WatermarkAsync(view));

        // No body: every view, every day that needs it. An explicit-day run does not record the master dataset as
        // read, so the first full run redoes the day (W stays); after it nothing is left to do.
        using var full = await host.Http.PostAsync("/v1/batch/run", content: null);
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        using var again = await host.Http.PostAsync("/v1/batch/run", content: null);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        using var empty = JsonDocument.Parse(await again.Content.ReadAsStringAsync());
        Assert.Empty(empty.RootElement.GetProperty("results").EnumerateArray());
        Assert.Equal(new DateTime(2024, 5, 2), await fixture.WatermarkAsync(view));
    }

    [Theory]
    [InlineData("""{"day": "2024-13-01"}""", "day")]
    [InlineData("""{"day": "01.05.2024"}""", "day")]
    [InlineData("""{"day": 20240501}""", "day")]
    [InlineData("""{"view": "no_such_view"}""", "view")]
    [InlineData("""{"view": 7}""", "view")]
    [InlineData("""{"date": "2024-05-01"}""", "date")]
    [InlineData("""{"view": """, "body")]
    public async Task Run_Returns400NamingTheField_WhenTheBodyIsInvalid(string json, string field)
    {
        await using var host = await TestHost.StartAsync(fixture.ClickHouse, [fixture.NewCheckoutView()], new JobsOptions(), fixture.NewDataRoot(), _clock);

        using var response = await host.Http.PostAsync("/v1/batch/run", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(field, problem.RootElement.GetProperty("field").GetString());
        Assert.Contains(field, problem.RootElement.GetProperty("title").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_Returns409_WhileAnotherRunHoldsTheViewsLock()
    {
        var view = fixture.NewCheckoutView();
        var options = new JobsOptions { RunLockTimeout = TimeSpan.FromMilliseconds(300) };
        await using var host = await TestHost.StartAsync(fixture.ClickHouse, [view], options, fixture.NewDataRoot(), _clock);

        // The lock the scheduled job (BatchRecomputeJob) takes for the view.
        await using (await RunLocks.AcquireAsync(host.Storage, [RunLocks.View(view.Name)], TimeSpan.Zero))
        {
            using var busy = await host.Http.PostAsJsonAsync("/v1/batch/run", new { view = view.Name });
            Assert.Equal(HttpStatusCode.Conflict, busy.StatusCode);
        }

        using var free = await host.Http.PostAsJsonAsync("/v1/batch/run", new { view = view.Name });
        Assert.Equal(HttpStatusCode.OK, free.StatusCode);
    }

    [Fact]
    public async Task Dashboard_AnswersLocalRequests()
    {
        await using var host = await TestHost.StartAsync(fixture.ClickHouse, [fixture.NewCheckoutView()], new JobsOptions(), fixture.NewDataRoot(), _clock);

        using var response = await host.Http.GetAsync("/hangfire");
        using var recurring = await host.Http.GetAsync("/hangfire/recurring");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("LambdaPlatform jobs", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, recurring.StatusCode);
        Assert.Contains("master-compaction", await recurring.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApiKey_AuthorisesRunsAndDashboardChanges_WhenConfigured()
    {
        var view = fixture.NewCheckoutView();
        var options = new JobsOptions { ApiKey = "0123456789abcdef-test" };
        await using var host = await TestHost.StartAsync(fixture.ClickHouse, [view], options, fixture.NewDataRoot(), _clock);

        using var without = await host.Http.PostAsJsonAsync("/v1/batch/run", new { view = view.Name });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/batch/run") { Content = JsonContent.Create(new { view = view.Name }) };
        request.Headers.Add("X-Api-Key", "0123456789abcdef-test");
        using var with = await host.Http.SendAsync(request);
        using var readOnly = await host.Http.GetAsync("/hangfire/recurring"); // local, no key: visible but read-only
        using var keyed = new HttpRequestMessage(HttpMethod.Get, "/hangfire/recurring");
        keyed.Headers.Add("X-Api-Key", "0123456789abcdef-test");
        using var full = await host.Http.SendAsync(keyed);

        Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
        Assert.Equal(HttpStatusCode.OK, with.StatusCode);
        Assert.Equal(HttpStatusCode.OK, readOnly.StatusCode);
        Assert.DoesNotContain("Trigger now", await readOnly.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        Assert.Contains("Trigger now", await full.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
