using LambdaPlatform.Hosting.Configuration;

namespace LambdaPlatform.Cli.Tests;

/// <summary>The one configuration file: keys checked with their line, the environment over the file, secrets only from the environment or files.</summary>
public sealed class ConfigurationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lambda-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Write(string json)
    {
        var path = Path.Combine(_folder, Guid.NewGuid().ToString("N")[..8] + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    private static Dictionary<string, string> Env(params (string Key, string Value)[] variables) => variables.ToDictionary(v => v.Key, v => v.Value);

    [Fact]
    public void Load_NamesFileLineAndKey_WhenAKeyIsUnknown()
    {
        var path = Write("""
            {
              // comments are fine
              "clickhouse": {
                "host": "ch1",
                "prot": 8123
              }
            }
            """);

        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(path, Env()));

        Assert.StartsWith($"{path}: line 5: clickhouse.prot: unknown key (known in clickhouse: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("port", e.Message, StringComparison.Ordinal);
        Assert.Equal(5, e.Line);
    }

    [Fact]
    public void Load_NamesTheLine_WhenAValueIsBad()
    {
        var path = Write("{\n  \"http\": {\n    \"listen\": \"everywhere\"\n  },\n  \"jobs\": { \"schedule\": \"0 25 * * *\" }\n}");

        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(path, Env()));

        Assert.Equal($"{path}: line 3: http.listen: 'everywhere' is not host:port (e.g. 127.0.0.1:5080)", e.Message);
    }

    [Fact]
    public void Load_NamesTheCron_WhenAScheduleIsBad()
    {
        var path = Write("{\n  \"jobs\": {\n    \"schedules\": { \"checkout_revenue\": \"0 25 * * *\" }\n  }\n}");

        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(path, Env()));

        Assert.StartsWith($"{path}: line 3: jobs.schedules.checkout_revenue: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("0 25 * * *", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NamesTheLine_WhenTheJsonIsMalformed()
    {
        var path = Write("{\n  \"kafka\": {\n    \"bootstrapServers\": \"k1:9092\"\n    \"partitions\": 4\n  }\n}");

        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(path, Env()));

        Assert.StartsWith($"{path}: line 4: not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_RefusesAPasswordInTheFile_AndSaysWhereItMayComeFrom()
    {
        var path = Write("{\n  \"clickhouse\": {\n    \"host\": \"ch1\",\n    \"password\": \"hunter2-hunter2\"\n  }\n}");

        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(path, Env()));

        Assert.StartsWith($"{path}: line 4: clickhouse.password: secrets may not be written in the configuration file", e.Message, StringComparison.Ordinal);
        Assert.Contains("LAMBDA_CLICKHOUSE__PASSWORD", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_LetsTheEnvironmentOverrideTheFile()
    {
        var path = Write("""{ "clickhouse": { "host": "ch1", "port": 8123, "user": "writer" }, "jobs": { "workers": 2 } }""");

        var settings = LambdaConfiguration.Load(path, Env(("LAMBDA_CLICKHOUSE__PORT", "9123"), ("LAMBDA_CLICKHOUSE__PASSWORD", "s3cret-s3cret"), ("LAMBDA_JOBS__SCHEDULE", "* * * * *"), ("LAMBDA_DATA", "/srv/x")));

        Assert.Equal("ch1", settings.ClickHouse.Host);
        Assert.Equal(9123, settings.ClickHouse.Port);
        Assert.Equal("s3cret-s3cret", settings.ClickHouse.Password);
        Assert.Equal("* * * * *", settings.Jobs.Schedule);
        Assert.Equal(2, settings.Jobs.Workers);
        Assert.Equal("/srv/x", settings.Data);
        Assert.DoesNotContain("s3cret", settings.ClickHouse.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NamesTheVariable_WhenAnOverrideIsBad()
    {
        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(null, Env(("LAMBDA_CLICKHOUSE__PORT", "eighty"))));

        Assert.StartsWith("LAMBDA_CLICKHOUSE__PORT (clickhouse.port): 'eighty' is not a whole number", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_IgnoresOtherLambdaVariables_ButNotUnknownSectionedOnes()
    {
        LambdaConfiguration.Load(null, Env(("LAMBDA_CHDB_LIBRARY", "/x/libchdb.so"), ("LAMBDA_API_KEY", "k")));

        var e = Assert.Throws<ConfigurationFileException>(() => LambdaConfiguration.Load(null, Env(("LAMBDA_CLICKHOUSE__HOTS", "ch1"))));
        Assert.StartsWith("LAMBDA_CLICKHOUSE__HOTS (clickhouse.HOTS): unknown key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ReadsSecretsFromTheFilesItNames()
    {
        var secret = Path.Combine(_folder, "pg");
        File.WriteAllText(secret, "from-a-file\n");
        var path = Write($$"""{ "postgres": { "host": "pg1", "passwordFile": "{{secret}}" } }""");

        var settings = LambdaConfiguration.Load(path, Env());

        Assert.Equal("from-a-file", settings.Postgres.Password);
        Assert.Contains("Password=from-a-file", settings.Postgres.ConnectionString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_KeepsTheOlderVariables()
    {
        var settings = LambdaConfiguration.Load(null, Env(("LAMBDA_CLICKHOUSE", "Host=ch9;Port=8124;User=writer"), ("LAMBDA_CLICKHOUSE_PASSWORD", "older-password")));

        Assert.Equal(("ch9", 8124, "writer", "older-password"), (settings.ClickHouse.Host, settings.ClickHouse.Port, settings.ClickHouse.User, settings.ClickHouse.Password));
    }

    [Fact]
    public void Load_AcceptsTheShippedExample_WithSecretsFromTheEnvironment()
    {
        var example = Path.Combine(AppContext.BaseDirectory, "deploy", "lambda.json");

        var settings = LambdaConfiguration.Load(example, Env(("LAMBDA_CLICKHOUSE__PASSWORD", "w"), ("LAMBDA_CLICKHOUSE__READERPASSWORD", string.Empty), ("LAMBDA_POSTGRES__PASSWORD", "p")));

        Assert.Equal("kafka1:9092,kafka2:9092,kafka3:9092", settings.Kafka.BootstrapServers);
        Assert.Equal(("writer", "analyst", "lambda"), (settings.ClickHouse.User, settings.ClickHouse.ReaderUser, settings.ClickHouse.Database));
        Assert.True(settings.Postgres.IsConfigured);
    }

    [Fact]
    public async Task ConfigCheck_PrintsOneLineAndExits2_WhenAKeyIsUnknown()
    {
        var path = Write("{\n  \"kafka\": { \"bootstrap\": \"k1:9092\" }\n}");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var exit = await LambdaCli.RunAsync(["config", "check", "--config", path], stdout, stderr);

        Assert.Equal(LambdaCli.UsageError, exit);
        Assert.Equal($"lambda: {path}: line 2: kafka.bootstrap: unknown key (known in kafka: bootstrapServers, partitions)", stderr.ToString().Trim());
    }

    [Fact]
    public async Task ConfigCheck_PrintsTheSettingsWithoutSecrets_WhenTheFileIsValid()
    {
        var path = Write("""{ "clickhouse": { "host": "ch1", "user": "writer" }, "jobs": { "schedules": { "checkout_revenue": "*/5 * * * *" } } }""");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var exit = await LambdaCli.RunAsync(["config", "check", "--config", path], stdout, stderr);

        Assert.True(exit == 0, stderr.ToString());
        Assert.Contains($"ok: {path}", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("http://ch1:8123 database default as writer", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("checkout_revenue: */5 * * * *", stdout.ToString(), StringComparison.Ordinal);
    }
}
