using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace LambdaPlatform.Cli.Tests;

/// <summary><c>POST /v1/sql</c> with the statement as the body, as ClickHouse's HTTP interface takes it.</summary>
[Collection(PlatformCollection.Name)]
public sealed class RawSqlTests(PlatformFixture platform)
{
    private async Task<(HttpStatusCode Status, string Body, string? ContentType)> PostAsync(string body, string mediaType, string query = "")
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await platform.Http.PostAsync(new Uri("/v1/sql" + query, UriKind.Relative), content);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/sql")]
    public async Task Sql_AnswersTabSeparated_WhenTheBodyIsTheStatement(string mediaType)
    {
        var (status, body, _) = await PostAsync("SELECT 1 AS one, 'a' AS letter", mediaType);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("1\ta\n", body);
    }

    [Fact]
    public async Task Sql_UsesTheFormatParameter_WhenGiven()
    {
        var (status, body, _) = await PostAsync("SELECT 1 AS one", "text/plain", "?default_format=CSVWithNames");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("\"one\"\n1\n", body);
    }

    [Fact]
    public async Task Sql_UsesATrailingFormatClause_LikeClickHouse()
    {
        var (status, body, _) = await PostAsync("SELECT 1 AS one\nFORMAT JSONEachRow;\n", "text/plain", "?default_format=CSV");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("{\"one\":1}\n", body);
    }

    [Fact]
    public async Task Sql_RefusesAWrite_WhenTheBodyIsTheStatement()
    {
        var (status, body, _) = await PostAsync("INSERT INTO lambda_watermarks (view) VALUES ('x')", "text/plain");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("sql", JsonDocument.Parse(body).RootElement.GetProperty("field").GetString());
    }

    [Fact]
    public async Task Sql_Answers415WithAProblemSayingWhatItAccepts_WhenTheMediaTypeIsRefused()
    {
        var (status, body, contentType) = await PostAsync("<sql>SELECT 1</sql>", "application/xml");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        Assert.Equal("application/problem+json", contentType);
        using var problem = JsonDocument.Parse(body);
        Assert.Equal(["application/json", "text/plain", "application/sql"], problem.RootElement.GetProperty("accepted").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("application/xml", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
