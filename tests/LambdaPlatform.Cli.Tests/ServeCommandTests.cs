namespace LambdaPlatform.Cli.Tests;

/// <summary><c>lambda serve</c> refuses settings it cannot run with, in one line, before it contacts any server.</summary>
public sealed class ServeCommandTests
{
    private static async Task<(int Exit, string Err)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var exit = await LambdaCli.RunAsync(args, stdout, stderr);
        return (exit, stderr.ToString().Trim());
    }

    [Fact]
    public async Task Serve_RefusesToStart_WhenBothTheApiAndTheJobsAreTurnedOff()
    {
        var (exit, err) = await RunAsync("serve", "--clickhouse", "Host=127.0.0.1;Port=9", "--no-api", "--no-jobs");

        Assert.Equal(LambdaCli.UsageError, exit);
        Assert.Equal("lambda: --no-api and --no-jobs leave nothing to serve: keep at least one", err);
    }

    [Fact]
    public async Task Serve_AsksForPostgreSql_WhenItsJobsHaveNoSharedStorage()
    {
        var (exit, err) = await RunAsync("serve", "--clickhouse", "Host=127.0.0.1;Port=9");

        Assert.Equal(LambdaCli.UsageError, exit);
        Assert.StartsWith("lambda: the jobs of lambda serve keep their state in PostgreSQL", err, StringComparison.Ordinal);
        Assert.Contains("postgres.host", err, StringComparison.Ordinal);
        Assert.Contains("--no-jobs", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_AsksForClickHouse_WhenNoneIsConfigured()
    {
        var (exit, err) = await RunAsync("serve", "--no-jobs");

        Assert.Equal(LambdaCli.UsageError, exit);
        Assert.StartsWith("lambda: --clickhouse is required", err, StringComparison.Ordinal);
    }
}
