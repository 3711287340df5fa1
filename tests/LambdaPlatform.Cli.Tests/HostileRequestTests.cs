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
    // Writes and DDL, whatever the case or the comments around them.
    [InlineData("insert into events select * from events limit 1")]
    [InlineData("/* a read */ INSERT INTO events SELECT * FROM events LIMIT 1")]
    [InlineData("-- SELECT\nDROP TABLE events")]
    [InlineData("CREATE TABLE x ENGINE = Memory AS SELECT 1")]
    [InlineData("CREATE DATABASE x")]
    [InlineData("CREATE DICTIONARY d (k UInt64, v String) PRIMARY KEY k SOURCE(FILE(path '/etc/passwd' format 'TSV')) LAYOUT(FLAT()) LIFETIME(0)")]
    [InlineData("DROP DATABASE default")]
    [InlineData("TRUNCATE TABLE checkout_revenue_rt")]
    [InlineData("ALTER TABLE events UPDATE eventType = 'x' WHERE 1")]
    [InlineData("ALTER TABLE events ADD COLUMN x UInt8")]
    [InlineData("DELETE FROM events WHERE 1")]
    [InlineData("UPDATE events SET eventType = 'x' WHERE 1")]
    [InlineData("ATTACH TABLE x FROM '/etc' (a String) ENGINE = File(TSV)")]
    [InlineData("DETACH TABLE events")]
    [InlineData("RENAME TABLE events TO events_gone")]
    [InlineData("EXCHANGE TABLES events AND lambda_watermarks")]
    [InlineData("OPTIMIZE TABLE events FINAL")]
    [InlineData("KILL QUERY WHERE 1")]
    [InlineData("SYSTEM SHUTDOWN")]
    [InlineData("SYSTEM DROP DNS CACHE")]
    [InlineData("GRANT ALL ON *.* TO default")]
    [InlineData("BACKUP TABLE events TO File('/tmp/x')")]
    [InlineData("USE system")]
    // Settings that would lift readonly, in any clause.
    [InlineData("SELECT 1 SETTINGS readonly = 0")]
    [InlineData("SELECT 1 SETTINGS max_threads = 1, readonly = 2")]
    [InlineData("SELECT 1 SETTINGS allow_ddl = 1")]
    [InlineData("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)")]
    [InlineData("SELECT 1 SETTINGS max_threads = 1 UNION ALL SELECT 2")]
    [InlineData("SELECT 1 SETTINGS `readonly` = 0")]
    // More than one statement, however it is hidden.
    [InlineData("SELECT 1;INSERT INTO events SELECT * FROM events LIMIT 1")]
    [InlineData("SELECT 1; -- nothing\nDROP TABLE events")]
    [InlineData("SELECT 1 /* ; */ ; TRUNCATE TABLE events")]
    [InlineData("SELECT ';' ; DROP TABLE events")]
    [InlineData("SELECT 1 #x\n; DROP TABLE events")]
    [InlineData("SELECT 1 /* unterminated")]
    [InlineData("SELECT 'unterminated")]
    // Functions that read or write outside the database.
    [InlineData("SELECT file('/etc/passwd')")]
    [InlineData("SELECT * FROM FILE('/etc/passwd', 'LineAsString')")]
    [InlineData("SELECT * FROM \"file\"('/etc/passwd', 'LineAsString')")]
    [InlineData("SELECT * FROM file /* x */ ('/etc/passwd', 'LineAsString')")]
    [InlineData("SELECT * FROM urlCluster('c', 'http://127.0.0.1:1/x', 'CSV')")]
    [InlineData("SELECT * FROM remoteSecure('127.0.0.1', system.one)")]
    [InlineData("SELECT * FROM cluster('default', system.one)")]
    [InlineData("SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')")]
    [InlineData("SELECT * FROM hdfs('hdfs://127.0.0.1:1/x', 'CSV')")]
    [InlineData("SELECT * FROM input('a String')")]
    [InlineData("SELECT * FROM executable('cat /etc/passwd', 'LineAsString', 'a String')")]
    [InlineData("SELECT * FROM jdbc('jdbc:x', 'x')")]
    [InlineData("SELECT * FROM odbc('DSN=x', 'x')")]
    [InlineData("SELECT * FROM mysql('127.0.0.1:1', 'db', 't', 'u', 'p')")]
    [InlineData("SELECT * FROM postgresql('127.0.0.1:1', 'db', 't', 'u', 'p')")]
    [InlineData("SELECT * FROM sqlite('/etc/passwd', 't')")]
    [InlineData("SELECT * FROM azureBlobStorage('http://127.0.0.1:1', 'c', 'b')")]
    [InlineData("SELECT * FROM dictionary('d')")]
    [InlineData("SELECT * FROM merge(system, '^users$')")]
    [InlineData("SELECT catboostEvaluate('/etc/passwd', 1)")]
    [InlineData("SELECT dictGet('secrets', 'value', toUInt64(1))")]
    [InlineData("SELECT dictGetOrDefault('secrets', 'value', toUInt64(1), '')")]
    [InlineData("SELECT DICTHAS('secrets', toUInt64(1))")]
    [InlineData("SELECT * FROM events INTO OUTFILE '/tmp/x'")]
    [InlineData("SELECT 1 FORMAT TSV")]
    // System tables with credentials, grants or other users' queries.
    [InlineData("SELECT * FROM system.users")]
    [InlineData("SELECT * FROM `system`.`users`")]
    [InlineData("SELECT * FROM \"SYSTEM\" . \"Grants\"")]
    [InlineData("SELECT name FROM system.roles UNION ALL SELECT name FROM system.quotas")]
    [InlineData("SELECT * FROM system.named_collections")]
    [InlineData("SELECT * FROM system.settings_profiles")]
    [InlineData("SELECT * FROM system.row_policies")]
    [InlineData("SELECT * FROM system.server_settings")]
    [InlineData("SELECT query FROM system.processes")]
    [InlineData("SELECT query FROM system.query_log")]
    [InlineData("SELECT * FROM system.user_directories")]
    [InlineData("SELECT * FROM loop(system.users) LIMIT 1")]
    [InlineData("SHOW USERS")]
    [InlineData("SHOW GRANTS")]
    [InlineData("SHOW ACCESS")]
    [InlineData("SHOW PROCESSLIST")]
    [InlineData("SHOW CREATE USER default")]
    [InlineData("SHOW CREATE ROW POLICY p")]
    [InlineData("SHOW NAMED COLLECTIONS")]
    public async Task Sql_RefusesAnythingButARead(string sql)
    {
        var before = await FingerprintAsync();
        using var response = await platform.Http.PostAsJsonAsync("/v1/sql", new { sql });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("sql", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("field").GetString());
        Assert.Equal(before, await FingerprintAsync());
    }

    [Fact]
    public async Task Sql_BackendRefusesWithReadonlyError_WhenAWriteGetsPastTheChecker()
    {
        // ClickHouse parses "WITH … INSERT"; the checker lets it through as a read (it starts with WITH), and the
        // readonly = 1 that every query carries stops it: the second line of defence at work.
        var before = await FingerprintAsync();
        using var response = await platform.Http.PostAsJsonAsync("/v1/sql", new { sql = "WITH 1 AS x INSERT INTO lambda_watermarks (view) SELECT 'hacked'" });
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(164, problem.GetProperty("clickHouseErrorCode").GetInt32()); // READONLY
        Assert.Equal(before, await FingerprintAsync());
    }

    [Theory]
    [InlineData("SELECT getSetting('readonly')")]
    [InlineData("SELECT getSetting('readonly') SETTINGS max_threads = 1, max_execution_time = 60")]
    [InlineData("SELECT getSetting('readonly'); -- the end")]
    [InlineData("WITH 1 AS one SELECT getSetting('readonly') /* readonly = 0 */")]
    public async Task Sql_RunsWithReadonlyForced_WhenTheQueryIsARead(string sql)
    {
        using var response = await platform.Http.PostAsJsonAsync("/v1/sql", new { sql, format = "TabSeparated" });
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.IsSuccessStatusCode, body);
        Assert.Equal("1", body.Trim());
    }

    [Theory]
    [InlineData("SELECT count() FROM system.settings")]
    [InlineData("SELECT format('{}-{}', 'a', 'b')")]
    [InlineData("SHOW TABLES")]
    [InlineData("SHOW CREATE TABLE events")]
    [InlineData("DESCRIBE TABLE events")]
    [InlineData("SELECT 'DROP TABLE events; file(x)' AS text")]
    public async Task Sql_AnswersReads_ThatLookLikeRefusedOnes(string sql)
    {
        using var response = await platform.Http.PostAsJsonAsync("/v1/sql", new { sql, format = "TabSeparated" });

        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
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
