using System.Diagnostics;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// The shipped Prometheus rules pass <c>promtool check rules</c> (syntax, PromQL, templates) and their unit tests
/// (<c>promtool test rules</c>: input series → expected alerts, including ones that must not fire). promtool comes from
/// Debian's <c>prometheus</c> package, which <c>make deps</c> installs.
/// </summary>
public sealed class PromtoolTests
{
    [Fact]
    public async Task CheckRules_Succeeds_OnTheShippedRules()
    {
        var (code, output) = await PromtoolAsync("check", "rules", OpsFiles.RulesFile);
        Assert.True(code == 0, "promtool check rules failed:\n" + output);
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TestRules_Succeeds_OnTheShippedUnitTests()
    {
        var (code, output) = await PromtoolAsync("test", "rules", OpsFiles.RulesTestFile);
        Assert.True(code == 0, "promtool test rules failed:\n" + output);
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }

    [Fact]
    public void RulesTests_CoverEveryAlert()
    {
        var alerts = File.ReadAllLines(OpsFiles.RulesFile).Select(l => l.Trim()).Where(l => l.StartsWith("- alert:", StringComparison.Ordinal))
            .Select(l => l["- alert:".Length..].Trim()).ToList();
        Assert.NotEmpty(alerts);
        var tests = File.ReadAllText(OpsFiles.RulesTestFile);
        Assert.All(alerts, alert => Assert.Contains("alertname: " + alert + "\n", tests, StringComparison.Ordinal));
    }

    private static async Task<(int Code, string Output)> PromtoolAsync(params string[] args)
    {
        var start = new ProcessStartInfo("promtool") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = OpsFiles.Root };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("promtool is not installed (make deps installs Debian's prometheus package): " + e.Message, e);
        }

        using var _ = process;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
