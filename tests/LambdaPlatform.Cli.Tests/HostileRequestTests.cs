using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LambdaPlatform.Cli.Tests;

/// <summary>Hostile requests to the HTTP API: each gets a 4xx with a problem+json body and changes nothing.</summary>
[Collection(PlatformCollection.Name)]
public sealed class HostileRequestTests(PlatformFixture platform)
{
    private static readonly string[] Fragments =
    [
        "' OR 1=1 --", "1; DROP TABLE events", "x') UNION ALL SELECT * FROM system.users --", "`events`", "\\'; TRUNCATE TABLE checkout_revenue_rt; --",
        "file('/etc/passwd')", "1) OR (1=1", "${jndi:ldap://x}", "%27%20OR%201=1", "1 SETTINGS readonly=0",
    ];

    public static IEnumerable<object[]> ViewRequests()
    {
        var requests = new List<string>();
        foreach (var f in Fragments)
        {
            var e = Uri.EscapeDataString(f);
            requests.Add($"/v1/views/checkout_revenue?store={e}");
            requests.Add($"/v1/views/checkout_revenue?from={e}");
            requests.Add($"/v1/views/checkout_revenue?to={e}");
            requests.Add($"/v1/views/checkout_revenue?granularity={e}");
            requests.Add($"/v1/views/checkout_revenue?measures={e}");
            requests.Add($"/v1/views/{e}");
            requests.Add($"/v1/views/checkout_revenue?{e}=berlin");
            requests.Add($"/v1/views/activity_by_type?source={e}&eventType=x");
        }

        requests.Add("/v1/views/checkout_revenue?from=1970-01-01T00:00:00Z&to=2200-01-01T00:00:00Z");
        requests.Add("/v1/views/checkout_revenue?from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z");
        requests.Add("/v1/views/checkout_revenue?from=2026-11-28T12:00:00Z&to=2026-11-28T11:00:00Z");
        requests.Add("/v1/views/checkout_revenue?from=2026-13-45T99:00:00Z");
        requests.Add("/v1/views/checkout_revenue?from=yesterday");
        requests.Add("/v1/views/checkout_revenue?to=" + new string('9', 5000));
        requests.Add("/v1/views/checkout_revenue?granularity=1s");
        requests.Add("/v1/views/checkout_revenue?granularity=1h&measures=buyers");
        requests.Add("/v1/views/checkout_revenue?measures=orders,nonexistent");
        requests.Add("/v1/views/checkout_revenue?city=berlin");
        requests.Add("/v1/views/no_such_view");
        requests.Add("/v1/views/checkout_revenue?store=berlin&store=paris");
        return requests.Select(r => new object[] { r });
    }

    [Theory]
    [MemberData(nameof(ViewRequests))]
    public async Task GetView_Answers4xxWithProblem_ForHostileRequest(string path)
    {
        var before = await FingerprintAsync();
        using var response = await platform.Http.GetAsync(new Uri(path, UriKind.Relative));
        Assert.InRange((int)response.StatusCode, 400, 499);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.TryGetProperty("detail", out _) || problem.TryGetProperty("title", out _));
        Assert.Equal(before, await FingerprintAsync());
    }

    [Theory]
    [InlineData("INSERT INTO events SELECT * FROM events LIMIT 1")]
    [InlineData("DROP TABLE events")]
    [InlineData("ALTER TABLE events DELETE WHERE 1")]
    [InlineData("SELECT 1; DROP TABLE events")]
    [InlineData("SELECT * FROM file('/etc/passwd', 'LineAsString')")]
    [InlineData("SELECT * FROM url('http://127.0.0.1:1/x', 'CSV')")]
    [InlineData("SELECT * FROM remote('127.0.0.1', system.one)")]
    [InlineData("ATTACH TABLE x")]
    [InlineData("CREATE TABLE x (a UInt8) ENGINE = Memory")]
    [InlineData("SELECT 1 INTO OUTFILE '/tmp/x'")]
    [InlineData("SET readonly = 0")]
    [InlineData("")]
    public async Task Sql_RefusesAnythingButARead(string sql)
    {
        var before = await FingerprintAsync();
        using var response = await platform.Http.PostAsJsonAsync("/v1/sql", new { sql });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("sql", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("field").GetString());
        Assert.Equal(before, await FingerprintAsync());
    }

    /// <summary>The tables and the watermark rows: what a successful attack would change.</summary>
    private async Task<string> FingerprintAsync()
    {
        using var response = await platform.Http.PostAsJsonAsync("/v1/sql", new
        {
            sql = "SELECT (SELECT groupArray(name) FROM (SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name)), (SELECT count() FROM lambda_watermarks)",
            format = "TabSeparated",
        });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync();
    }
}
