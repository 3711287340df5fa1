using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.ClickHouse;

namespace LambdaPlatform.Cli.Tests;

/// <summary>A real clickhouse-server (Debian's 18.16) with the generated users, for `lambda sql` reading its connection from the environment.</summary>
public sealed class ClickHouseServerFixture : IAsyncLifetime
{
    public string WriterPassword { get; } = "pw-" + Guid.NewGuid().ToString("N");

    public ClickHouseServerProcess Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await ClickHouseServerProcess.StartAsync(new ClickHouseServerProcessOptions { WriterPassword = WriterPassword });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>`lambda sql` against a ClickHouse server named by LAMBDA_CLICKHOUSE, its password in LAMBDA_CLICKHOUSE_PASSWORD: nothing secret on the command line.</summary>
public sealed class SqlFromEnvironmentTests(ClickHouseServerFixture fixture) : IClassFixture<ClickHouseServerFixture>
{
    private Dictionary<string, string> Environment(string user, string password) => new()
    {
        ["LAMBDA_CLICKHOUSE"] = $"Host=127.0.0.1;Port={fixture.Server.HttpPort};User={user}",
        ["LAMBDA_CLICKHOUSE_PASSWORD"] = password,
    };

    [Fact]
    public async Task LambdaSql_QueriesTheServer_WithTheConnectionFromTheEnvironment()
    {
        var (code, output, err) = await SecuredPlatformFixture.RunLambdaAsync(Environment("writer", fixture.WriterPassword),
            "sql", "SELECT 40 + 2", "--format", "TabSeparated");

        Assert.True(code == 0, err);
        Assert.Equal("42", output.Trim());
    }

    [Fact]
    public async Task LambdaSql_RunsReadonly_EvenAsTheWriter()
    {
        var (code, output, err) = await SecuredPlatformFixture.RunLambdaAsync(Environment("writer", fixture.WriterPassword),
            "sql", "SELECT value FROM system.settings WHERE name = 'readonly'", "--format", "TabSeparated");

        Assert.True(code == 0, err);
        Assert.Equal("1", output.Trim());
    }

    [Fact]
    public async Task LambdaSql_WorksForTheReadonlyAnalyst()
    {
        var (code, output, err) = await SecuredPlatformFixture.RunLambdaAsync(Environment("analyst", ""), "sql", "SELECT 7", "--format", "TabSeparated");

        Assert.True(code == 0, err);
        Assert.Equal("7", output.Trim());
    }

    [Fact]
    public async Task LambdaSql_RefusesWrites_BeforeSendingThem()
    {
        var (code, _, err) = await SecuredPlatformFixture.RunLambdaAsync(Environment("writer", fixture.WriterPassword),
            "sql", "CREATE TABLE from_cli (a UInt8) ENGINE = Memory");

        Assert.Equal(LambdaCli.UsageError, code);
        Assert.StartsWith("lambda: invalid 'sql': only reads are allowed", err.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LambdaSql_SaysWhichUserFailed_AndQuotesNoPassword_WhenThePasswordIsWrong()
    {
        const string wrong = "not-the-password-7c1e";
        var (code, output, err) = await SecuredPlatformFixture.RunLambdaAsync(Environment("writer", wrong), "sql", "SELECT 1");

        Assert.Equal(LambdaCli.Failure, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("Wrong password for user writer", err, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, err + output, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.WriterPassword, err + output, StringComparison.Ordinal);
    }
}
