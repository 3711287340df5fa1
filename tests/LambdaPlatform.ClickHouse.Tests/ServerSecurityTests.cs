using System.Net;
using System.Net.Sockets;
using LambdaPlatform.Dev.ClickHouse;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// The users of the generated users.xml on the real clickhouse-server (Debian's 18.16): <c>analyst</c> reads and
/// can do nothing else, <c>writer</c> needs its password, and no password reaches a message or a file in clear.
/// </summary>
[Collection(ServerGroup.Name)]
public sealed class ServerSecurityTests(ServerFixture fixture)
{
    private const int Readonly = 164; // ClickHouse's READONLY error code

    [Fact]
    public async Task Analyst_CanSelect()
    {
        var table = await CreateTableWithOneRowAsync();
        await using var analyst = new ServerClickHouse(fixture.Server.AnalystConnectionOptions);

        Assert.Equal("1", await Tsv.ScalarAsync(analyst, $"SELECT count() FROM {table}"));
        Assert.Equal("1", await Tsv.ScalarAsync(analyst, "SELECT value FROM system.settings WHERE name = 'readonly'"));
    }

    [Theory]
    [InlineData("INSERT INTO {0} VALUES (2)")]
    [InlineData("CREATE TABLE {0}_copy (a UInt8) ENGINE = Memory")]
    [InlineData("CREATE DATABASE analyst_db")]
    [InlineData("DROP TABLE {0}")]
    [InlineData("TRUNCATE TABLE {0}")]
    [InlineData("ALTER TABLE {0} DELETE WHERE 1")]
    [InlineData("ALTER TABLE {0} ADD COLUMN b UInt8")]
    [InlineData("RENAME TABLE {0} TO {0}_gone")]
    [InlineData("OPTIMIZE TABLE {0}")]
    [InlineData("SET readonly = 0")]
    [InlineData("SET max_memory_usage = 1000")]
    [InlineData("SELECT count() FROM {0} SETTINGS readonly = 0")]
    [InlineData("SELECT count() FROM {0} SETTINGS readonly = 2")]
    public async Task Analyst_GetsTheReadonlyError_WhenItTriesToChangeAnything(string statement)
    {
        var table = await CreateTableWithOneRowAsync();
        await using var analyst = new ServerClickHouse(fixture.Server.AnalystConnectionOptions);
        var sql = string.Format(System.Globalization.CultureInfo.InvariantCulture, statement, table);

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => sql.StartsWith("SELECT", StringComparison.Ordinal)
            ? Tsv.ScalarAsync(analyst, sql)
            : analyst.ExecuteAsync(sql));

        Assert.Equal(Readonly, error.ErrorCode);
        Assert.Contains("readonly mode", error.Message, StringComparison.Ordinal);
        Assert.Equal("1", await Tsv.ScalarAsync(fixture.Backend, $"SELECT count() FROM {table}"));
        Assert.Equal("a", await Tsv.ScalarAsync(fixture.Backend, $"SELECT arrayStringConcat(groupArray(name), ',') FROM system.columns WHERE database = currentDatabase() AND table = '{table}'"));
    }

    [Fact]
    public async Task Writer_CanWrite_WithThePasswordFromTheOptions()
    {
        var options = fixture.Server.WriterConnectionOptions;
        Assert.Equal(fixture.WriterPassword, options.Password);
        await using var writer = new ServerClickHouse(options);
        var table = "writer_" + Guid.NewGuid().ToString("N");

        await writer.ExecuteAsync($"CREATE TABLE {table} (a UInt8) ENGINE = Memory");
        await writer.ExecuteAsync($"INSERT INTO {table} VALUES (7)");

        Assert.Equal("7", await Tsv.ScalarAsync(writer, $"SELECT sum(a) FROM {table}"));
        await writer.ExecuteAsync($"DROP TABLE {table}");
    }

    [Theory]
    [InlineData("")]
    [InlineData("wrong-password-3f9a1c")]
    public async Task Writer_IsRefused_WithoutTheRightPassword_AndTheMessageQuotesNoPassword(string password)
    {
        await using var writer = new ServerClickHouse(fixture.Server.WriterConnectionOptions with { Password = password });

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => writer.ExecuteAsync("SELECT 1"));

        Assert.True(error.ErrorCode is 193 or 194, error.Message); // WRONG_PASSWORD, REQUIRED_PASSWORD
        Assert.Contains("writer", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.WriterPassword, error.ToString(), StringComparison.Ordinal);
        if (password.Length > 0)
        {
            Assert.DoesNotContain(password, error.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Password_IsInNoDescriptionMessageOrFile()
    {
        var secret = fixture.WriterPassword;
        var options = fixture.Server.WriterConnectionOptions;
        Assert.DoesNotContain(secret, options.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, $"{options}", StringComparison.Ordinal);
        Assert.DoesNotContain(secret, new ClickHouseServerProcessOptions { WriterPassword = secret }.ToString(), StringComparison.Ordinal);

        // users.xml keeps a hash only.
        var users = await File.ReadAllTextAsync(Path.Combine(fixture.Server.DataPath, "users.xml"));
        Assert.Contains("<writer>", users, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, users, StringComparison.Ordinal);

        // A server that is not there.
        int closedPort;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        await using var unreachable = new ServerClickHouse(options with { Port = closedPort });
        var down = await Assert.ThrowsAsync<ClickHouseException>(() => unreachable.ExecuteAsync("SELECT 1"));
        Assert.DoesNotContain(secret, down.ToString(), StringComparison.Ordinal);

        // A connection string with a mistake in it.
        var bad = Assert.Throws<ArgumentException>(() => ClickHouseServerOptions.FromConnectionString($"Host=127.0.0.1;Password={secret};Bogus=1"));
        Assert.DoesNotContain(secret, bad.ToString(), StringComparison.Ordinal);
        var badPort = Assert.Throws<ArgumentException>(() => ClickHouseServerOptions.FromConnectionString($"Password={secret};Port=http"));
        Assert.DoesNotContain(secret, badPort.ToString(), StringComparison.Ordinal);

        // The server's own log of the failed logins.
        await using var wrong = new ServerClickHouse(options with { Password = secret + "x" });
        await Assert.ThrowsAsync<ClickHouseException>(() => wrong.ExecuteAsync("SELECT 1"));
        foreach (var log in Directory.EnumerateFiles(Path.Combine(fixture.Server.DataPath, "log")))
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            Assert.DoesNotContain(secret, await reader.ReadToEndAsync(), StringComparison.Ordinal);
        }
    }

    private async Task<string> CreateTableWithOneRowAsync()
    {
        var table = "analyst_" + Guid.NewGuid().ToString("N");
        await fixture.Backend.ExecuteAsync($"CREATE TABLE {table} (a UInt8) ENGINE = MergeTree ORDER BY a");
        await fixture.Backend.ExecuteAsync($"INSERT INTO {table} VALUES (1)");
        return table;
    }
}
