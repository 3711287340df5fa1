using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LambdaPlatform.Cli.Tests;

/// <summary>API keys on a real `lambda up` whose keys come from LAMBDA_API_KEYS and --api-keys-file.</summary>
[Collection(SecuredPlatformCollection.Name)]
public sealed class ApiKeyTests(SecuredPlatformFixture platform)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    public static TheoryData<string, string> ProtectedEndpoints() => new()
    {
        { "GET", "/v1/views" },
        { "GET", "/v1/views/checkout_revenue" },
        { "GET", "/v1/views/checkout_revenue/accuracy" },
        { "POST", "/v1/sql" },
        { "GET", "/metrics" },
        { "GET", "/docs" },
        { "GET", "/openapi/v1.json" },
        { "GET", "/hangfire" },
        { "POST", "/v1/batch/run" },
    };

    [Theory]
    [MemberData(nameof(ProtectedEndpoints))]
    public async Task Endpoint_Answers401WithProblem_WithoutKey(string method, string path)
    {
        using var client = platform.Client();
        using var response = await client.SendAsync(Request(method, path));

        await AssertUnauthorizedAsync(response);
    }

    [Theory]
    [MemberData(nameof(ProtectedEndpoints))]
    public async Task Endpoint_Answers401WithProblem_WithWrongKey(string method, string path)
    {
        using var bearer = platform.Client("wrong-key-0123456789-abcdefgh");
        using (var response = await bearer.SendAsync(Request(method, path)))
        {
            await AssertUnauthorizedAsync(response);
        }

        using var header = platform.Client();
        var request = Request(method, path);

        // A valid key with one character changed, in the other header.
        request.Headers.Add("X-Api-Key", SecuredPlatformFixture.EnvironmentKey[..^1] + "k");
        using (var response = await header.SendAsync(request))
        {
            await AssertUnauthorizedAsync(response);
        }
    }

    [Theory]
    [MemberData(nameof(ProtectedEndpoints))]
    public async Task Endpoint_Answers_WithKeyFromEnvironmentOrFile(string method, string path)
    {
        using var bearer = platform.Client(SecuredPlatformFixture.EnvironmentKey);
        using (var response = await bearer.SendAsync(Request(method, path)))
        {
            AssertServed(response, path);
        }

        using var header = platform.Client();
        var request = Request(method, path);
        request.Headers.Add("X-Api-Key", SecuredPlatformFixture.FileKey);
        using (var response = await header.SendAsync(request))
        {
            AssertServed(response, path);
        }
    }

    [Fact]
    public async Task Health_IsOpen_WithoutKey()
    {
        using var client = platform.Client();
        using var response = await client.GetAsync(new Uri("/health", UriKind.Relative));

        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, response.StatusCode.ToString());
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task UnknownPath_Answers401_WithoutKey()
    {
        using var client = platform.Client();
        using var response = await client.GetAsync(new Uri("/v1/no-such-thing", UriKind.Relative));

        await AssertUnauthorizedAsync(response);
    }

    [Fact]
    public async Task Dashboard_NeedsTheKey_WhenTheRequestIsNotLocal()
    {
        var source = RawHttp.NonLoopbackAddress();
        await using (var without = await RawHttp.ConnectAsync(platform.BaseAddress, source))
        {
            await without.SendAsync("GET /hangfire HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
            Assert.Equal(401, await without.ReceiveStatusAsync(Generous));
        }

        await using var with = await RawHttp.ConnectAsync(platform.BaseAddress, source);
        await with.SendAsync($"GET /hangfire HTTP/1.1\r\nHost: test\r\nX-Api-Key: {SecuredPlatformFixture.FileKey}\r\nConnection: close\r\n\r\n");
        Assert.Equal(200, await with.ReceiveStatusAsync(Generous));
    }

    [Fact]
    public async Task LambdaSql_SendsTheKeyFromTheEnvironment()
    {
        var url = platform.BaseAddress.ToString();
        var (code, output, err) = await SecuredPlatformFixture.RunLambdaAsync(
            new Dictionary<string, string> { ["LAMBDA_API_KEY"] = SecuredPlatformFixture.EnvironmentKey }, "sql", "SELECT 40 + 2", "--format", "TabSeparated", "--url", url);
        Assert.True(code == 0, err);
        Assert.Equal("42", output.Trim());

        (code, _, err) = await SecuredPlatformFixture.RunLambdaAsync(new Dictionary<string, string>(), "sql", "SELECT 1", "--url", url);
        Assert.Equal(LambdaCli.UsageError, code);
        Assert.Equal("lambda: API key required: this endpoint needs an API key: send an API key as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'", err.Trim());
    }

    [Fact]
    public async Task Keys_AreNeverWrittenToTheOutput()
    {
        // Good and bad keys in both headers, then look at everything the process printed (its logs included).
        foreach (var key in new[] { SecuredPlatformFixture.EnvironmentKey, SecuredPlatformFixture.FileKey, "wrong-key-0123456789-abcdefgh" })
        {
            using var client = platform.Client(key);
            using var response = await client.GetAsync(new Uri("/v1/views", UriKind.Relative));
        }

        var output = platform.Output;
        Assert.Contains("api keys        : 2 configured", output, StringComparison.Ordinal);
        Assert.DoesNotContain("warning: no API keys configured", output, StringComparison.Ordinal);
        Assert.DoesNotContain(SecuredPlatformFixture.EnvironmentKey, output, StringComparison.Ordinal);
        Assert.DoesNotContain(SecuredPlatformFixture.FileKey, output, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-key-0123456789-abcdefgh", output, StringComparison.Ordinal);

        // Nor a line per refused request (anyone could flood the log).
        Assert.DoesNotContain("was not authenticated", output, StringComparison.Ordinal);
    }

    private static HttpRequestMessage Request(string method, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative));
        if (path == "/v1/sql")
        {
            request.Content = JsonContent.Create(new { sql = "SELECT 1" });
        }

        return request;
    }

    private static async Task AssertUnauthorizedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(body.Length < 1024, body);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal("API key required", problem.GetProperty("title").GetString());
        Assert.Contains("Authorization: Bearer <key>", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static void AssertServed(HttpResponseMessage response, string path)
    {
        // /docs redirects to its page (/docs/); everything else answers 200.
        var expected = path == "/docs" ? HttpStatusCode.Redirect : HttpStatusCode.OK;
        Assert.Equal(expected, response.StatusCode);
    }
}
