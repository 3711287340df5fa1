namespace LambdaPlatform.Cli.Tests;

/// <summary>Mistakes give one line on stderr and a non-zero exit code, never a stack trace.</summary>
public sealed class CliErrorTests
{
    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await LambdaCli.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("up", "--rate", "fast")]
    [InlineData("frobnicate")]
    [InlineData("produce")]
    [InlineData("sql")]
    [InlineData("up", "--no-such-option")]
    [InlineData("batch", "run", "--day", "yesterday")]
    public async Task Run_PrintsOneLineAndFails_WhenArgumentsAreBad(params string[] args)
    {
        var (code, _, err) = await RunAsync(args);
        Assert.Equal(LambdaCli.UsageError, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("lambda: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sql_PrintsOneLine_WhenThePlatformIsUnreachable()
    {
        var (code, _, err) = await RunAsync("sql", "SELECT 1", "--url", "http://127.0.0.1:9");
        Assert.Equal(LambdaCli.Failure, code);
        Assert.Equal("lambda: cannot reach the platform's HTTP API: Connection refused (127.0.0.1:9)", err.Trim());
    }

    [Fact]
    public async Task Sql_SaysNothingIsRunning_WhenThereIsNoEndpointsFile()
    {
        var (code, _, err) = await RunAsync("sql", "SELECT 1", "--data", Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N")));
        Assert.NotEqual(0, code);
        Assert.Contains("no running platform found", err, StringComparison.Ordinal);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Speed_PrintsOneLine_WhenClickHouseIsUnreachable()
    {
        var (code, _, err) = await RunAsync("speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1;Port=9");
        Assert.Equal(LambdaCli.Failure, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("127.0.0.1:9", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Produce_NamesTheFile_WhenItDoesNotExist()
    {
        var (code, _, err) = await RunAsync("produce", "--file", "/nonexistent/events.jsonl", "--kafka", "127.0.0.1:9");
        Assert.Equal(LambdaCli.UsageError, code);
        Assert.Equal("lambda: --file: /nonexistent/events.jsonl does not exist", err.Trim());
    }
}
