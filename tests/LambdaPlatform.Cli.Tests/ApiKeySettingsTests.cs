using System.Diagnostics;
using System.Net;
using LambdaPlatform.Serving.Security;

namespace LambdaPlatform.Cli.Tests;

/// <summary>Where keys come from, how they are checked, and what `lambda up` says about them.</summary>
public sealed class ApiKeySettingsTests
{
    private const string KeyA = "key-a-0123456789abcdef";
    private const string KeyB = "key-b-0123456789abcdef";

    [Fact]
    public void Load_ReadsCommaSeparatedKeysAndAKeysFile_SkippingCommentsAndBlankLines()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, $"# the ops team\n\n  {KeyB}  \n#{KeyA}x\n");

            var keys = ApiKeys.Load($" {KeyA} ,,", file);

            Assert.Equal(2, keys.Count);
            Assert.True(keys.Matches(KeyA));
            Assert.True(keys.Matches(KeyB));
            Assert.False(keys.Matches(KeyA + "x"));
            Assert.False(keys.Matches(KeyA[..^1]));
            Assert.False(keys.Matches(""));
            Assert.False(keys.Matches(null));
            Assert.Equal("2 API key(s)", keys.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Load_GivesNoKeys_WhenNothingIsConfigured()
    {
        var keys = ApiKeys.Load(null, null);

        Assert.True(keys.IsEmpty);
        Assert.False(keys.Matches(KeyA));
    }

    [Theory]
    [InlineData("short-key")]
    [InlineData("key with spaces 0123456789")]
    [InlineData("key-with-ümlaut-0123456789")]
    public void From_RefusesAKey_WithoutQuotingIt(string bad)
    {
        var error = Assert.Throws<ArgumentException>(() => ApiKeys.From([KeyA, bad]));

        Assert.Contains("API key #2", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(bad, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Up_PrintsOneLineWithoutTheKey_WhenTheKeysFileHasABadKey()
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, "tooshort-secret\n");
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();

            var code = await LambdaCli.RunAsync(["up", "--api-keys-file", file, "--data", Path.Combine(Path.GetTempPath(), "unused-" + Guid.NewGuid())], stdout, stderr);

            Assert.Equal(LambdaCli.UsageError, code);
            Assert.Equal("lambda: API key #1 must be 16 to 512 characters long (it is 15)", stderr.ToString().Trim());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Up_PrintsOneLine_WhenTheSqlBodyLimitIsOutOfRange()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await LambdaCli.RunAsync(["up", "--max-sql-body", "5", "--data", Path.Combine(Path.GetTempPath(), "unused-" + Guid.NewGuid())], stdout, stderr);

        Assert.Equal(LambdaCli.UsageError, code);
        Assert.Equal("lambda: HttpLimits.MaxSqlBodyBytes must be between 1 KiB and 1 GiB", stderr.ToString().Trim());
    }

    [Fact]
    public async Task Up_WarnsThatTheApiIsOpen_WhenNoKeysAreConfigured()
    {
        var data = Path.Combine(Path.GetTempPath(), "lambda-up-open-" + Guid.NewGuid().ToString("N"));
        var http = "127.0.0.1:" + PlatformFixture.FreePort();
        using var process = SecuredPlatformFixture.Start(["up", "--data", data, "--http", http, "--partitions", "1"], new Dictionary<string, string>());
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var stopwatch = Stopwatch.StartNew();
            while (!output.Any(l => l.StartsWith("warning: no API keys configured", StringComparison.Ordinal)))
            {
                Assert.False(process.HasExited, string.Join('\n', output));
                Assert.True(stopwatch.Elapsed < TimeSpan.FromMinutes(3), "no warning line:\n" + string.Join('\n', output));
                await Task.Delay(200);
            }

            Assert.Contains(output, l => l.Trim() == "api keys        : none");
            using var client = new HttpClient { BaseAddress = new Uri("http://" + http) };
            using var response = await client.GetAsync(new Uri("/v1/views", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }
}
