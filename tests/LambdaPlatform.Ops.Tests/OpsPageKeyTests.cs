using System.Text.Json;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// The operations page of a platform with API keys configured, in Debian's chromium: it shows no data and asks for a key, refuses
/// a wrong one, shows the API's numbers once the right one is entered, and never shows the key.
/// </summary>
public sealed class OpsPageKeyTests(OpsPageKeyTests.Fixture fixture) : IClassFixture<OpsPageKeyTests.Fixture>
{
    private readonly TestPlatform _platform = fixture.Platform;
    private readonly OpsBrowser _browser = fixture.Browser;

    /// <summary>One platform with one API key (the test's HTTP client sends it) and one browser for the class.</summary>
    public sealed class Fixture : PlatformWithBrowser
    {
        public string Key { get; } = "ops-key-" + Guid.NewGuid().ToString("N");

        protected override Task<TestPlatform> StartPlatformAsync() => TestPlatform.StartAsync(apiKey: Key);

        protected override async Task PrepareAsync(TestPlatform platform)
        {
            platform.Produce(TestPlatform.Checkouts(30, DateTime.UtcNow.AddSeconds(-30), TimeSpan.FromSeconds(1), seed: 41));
            await TestPlatform.PollAsync(async () => (await platform.GetJsonAsync("/v1/views")).GetProperty("speedPartitions").GetArrayLength() > 0,
                "the speed layer's first flush");
        }
    }

    [Fact]
    public async Task Page_AsksForAKey_AndShowsTheApisNumbersOnceItIsEntered()
    {
        await using var session = await _browser.OpenAsync(_platform.BaseUrl);
        var page = session.Page;

        // Asks for a key before any call: nothing from the API on the page, no 401 in the console.
        await page.Locator("#key").WaitForAsync();
        var shown = await session.ReadAsync();
        Assert.True(shown.GetProperty("mainHidden").GetBoolean(), "the data is visible before a key was entered");
        Assert.False(shown.GetProperty("keyFormHidden").GetBoolean());
        Assert.Equal("API key needed", shown.GetProperty("status").GetString());
        Assert.Empty(shown.GetProperty("views").EnumerateArray());
        Assert.Empty(shown.GetProperty("partitions").EnumerateArray());
        Assert.Equal("password", await page.Locator("#key").GetAttributeAsync("type"));
        Assert.Empty(session.Errors);

        // A wrong key is refused and asked again (the browser logs the API's 401s for it, and nothing else is logged from here on).
        await page.Locator("#key").FillAsync("wrong-" + Guid.NewGuid().ToString("N"));
        await page.Locator("#key-entry button[type=submit]").ClickAsync();
        await page.Locator("#key-error").Filter(new() { HasText = "refused" }).WaitForAsync();
        Assert.True((await session.ReadAsync()).GetProperty("mainHidden").GetBoolean(), "the data is visible after a wrong key");
        Assert.All(session.Errors, e => Assert.Contains("401", e, StringComparison.Ordinal));

        // The right key: the page shows the API's numbers (read by the test with the same key).
        await page.Locator("#key").FillAsync(fixture.Key);
        await page.Locator("#key-entry button[type=submit]").ClickAsync();
        await session.WaitForRefreshesAsync(1);
        await OpsPageSession.UntilAsync(async () =>
        {
            var before = await OpsPageTests.ReadApiAsync(_platform);
            var now = await session.ReadAsync();
            var after = await OpsPageTests.ReadApiAsync(_platform);
            return Mismatch(now) ?? OpsPageTests.Mismatch(before, now, after);
        });
        Assert.NotEmpty((await session.ReadAsync()).GetProperty("partitions").EnumerateArray());
        Assert.All(session.Errors, e => Assert.Contains("401", e, StringComparison.Ordinal)); // the wrong key's calls answer one by one

        // Nothing secret shown: the key is in no text, attribute or field of the page, nor in its address.
        Assert.DoesNotContain(fixture.Key, await page.ContentAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Key, await page.EvaluateAsync<string>("() => document.body.innerText"), StringComparison.Ordinal);
        Assert.Equal(string.Empty, await page.Locator("#key").InputValueAsync());
        Assert.DoesNotContain(fixture.Key, page.Url, StringComparison.Ordinal);
        await session.ScreenshotAsync("ops-page-with-key.png");

        static string? Mismatch(JsonElement now) => now.GetProperty("mainHidden").GetBoolean() ? "the data is still hidden after the right key" : null;
    }
}
