using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// Debian's chromium (<see cref="ExecutablePath"/>, installed by <c>make chromium</c>) driven headless by Microsoft.Playwright:
/// Playwright's own browser downloads are never used. One browser per test class; a fresh context (so a fresh session
/// storage) per page.
/// </summary>
public sealed class OpsBrowser : IAsyncDisposable
{
    /// <summary>The browser the tests drive: Debian's chromium.</summary>
    public const string ExecutablePath = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;

    private OpsBrowser(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    public static async Task<OpsBrowser> LaunchAsync()
    {
        Assert.True(File.Exists(ExecutablePath), $"{ExecutablePath} is missing: run `make chromium` (Debian's chromium)");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage"], // root in a container
        });
        return new OpsBrowser(playwright, browser);
    }

    /// <summary>Opens the operations page of <paramref name="baseUrl"/> (refreshing every second) in a fresh context.</summary>
    public async Task<OpsPageSession> OpenAsync(string baseUrl)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1440, Height = 1000 } });
        var page = await context.NewPageAsync();
        var session = new OpsPageSession(context, page);
        await page.GotoAsync(baseUrl.TrimEnd('/') + "/?refresh=1");
        return session;
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}

/// <summary>A test class's platform (<see cref="StartPlatformAsync"/>, prepared by <see cref="PrepareAsync"/>) and browser.</summary>
public abstract class PlatformWithBrowser : IAsyncLifetime
{
    public TestPlatform Platform { get; private set; } = null!;

    public OpsBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Platform = await StartPlatformAsync();
        Browser = await OpsBrowser.LaunchAsync();
        await PrepareAsync(Platform);
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        await Platform.DisposeAsync();
    }

    /// <summary>Starts the platform: on embedded defaults without API keys unless overridden.</summary>
    protected virtual Task<TestPlatform> StartPlatformAsync() => TestPlatform.StartAsync();

    /// <summary>Gives the platform what the class's tests read (events, batch runs).</summary>
    protected abstract Task PrepareAsync(TestPlatform platform);
}

/// <summary>One page of the operations page, with every console error and uncaught script error it produced.</summary>
public sealed class OpsPageSession : IAsyncDisposable
{
    // What the page shows, read from the DOM: per table the rows' keys, cells' data-value (the API's value as the page got it)
    // and cells' visible text.
    private const string ReadScript = """
        () => {
          const table = (id) => [...document.querySelectorAll(`#${id} tbody tr[data-key]`)].map((tr) => ({
            key: tr.dataset.key,
            values: [...tr.cells].map((td) => td.dataset.value ?? null),
            texts: [...tr.cells].map((td) => td.textContent),
          }));
          const kpi = (id) => ({ value: document.getElementById(id).dataset.value ?? null, text: document.getElementById(id).textContent });
          return JSON.stringify({
            refreshed: Number(document.body.dataset.refreshed || 0),
            mainHidden: document.getElementById('main').hidden,
            keyFormHidden: document.getElementById('key-form').hidden,
            status: document.getElementById('status').textContent,
            statusError: document.getElementById('status').classList.contains('error'),
            views: table('views'),
            partitions: table('partitions'),
            dlqTop: table('dlq-top'),
            batchRuns: table('batch-runs'),
            ingestRecords: kpi('ingest-records'),
            deadLetters: kpi('dlq-records'),
            accuracy: [...document.querySelectorAll('#accuracy .accuracy-view')].map((box) => ({
              view: box.dataset.view,
              rows: [...box.querySelectorAll('table:not(.u-legend) > tbody > tr[data-key]')].map((tr) => ({
                key: tr.dataset.key,
                values: [...tr.cells].map((td) => td.dataset.value ?? null),
                texts: [...tr.cells].map((td) => td.textContent),
              })),
            })),
            chartPoints: Number(document.getElementById('ingest-chart').dataset.points || 0),
            chartCanvas: document.querySelector('#ingest-chart canvas') !== null,
          });
        }
        """;

    private readonly IBrowserContext _context;
    private readonly List<string> _errors = [];
    private readonly Lock _lock = new();

    internal OpsPageSession(IBrowserContext context, IPage page)
    {
        _context = context;
        Page = page;
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (_lock)
                {
                    _errors.Add("console: " + message.Text);
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (_lock)
            {
                _errors.Add("uncaught: " + error);
            }
        };
    }

    public IPage Page { get; }

    /// <summary>Console errors and uncaught script errors so far.</summary>
    public List<string> Errors
    {
        get
        {
            lock (_lock)
            {
                return [.. _errors];
            }
        }
    }

    public async Task<JsonElement> ReadAsync() => JsonDocument.Parse(await Page.EvaluateAsync<string>(ReadScript)).RootElement.Clone();

    /// <summary>Waits until the page has rendered the API's answers <paramref name="count"/> times since it was opened.</summary>
    public Task WaitForRefreshesAsync(int count) =>
        Page.WaitForFunctionAsync($"() => Number(document.body.dataset.refreshed || 0) >= {count.ToString(CultureInfo.InvariantCulture)}", null,
            new PageWaitForFunctionOptions { Timeout = (float)TestPlatform.Deadline.TotalMilliseconds });

    /// <summary>A full-page screenshot under the repository's <c>artifacts/</c> (git-ignored); returns its path.</summary>
    public async Task<string> ScreenshotAsync(string name)
    {
        var path = Path.Combine(OpsFiles.Root, "artifacts", name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    /// <summary>
    /// Calls <paramref name="mismatch"/> (null when what it checks holds) until it returns null; fails with its last answer at the
    /// deadline. The page refreshes every second, so a value it shows can trail the API's by one refresh.
    /// </summary>
    public static async Task UntilAsync(Func<Task<string?>> mismatch, TimeSpan? deadline = null)
    {
        var stopwatch = Stopwatch.StartNew();
        while (await mismatch() is { } last)
        {
            if (stopwatch.Elapsed > (deadline ?? TestPlatform.Deadline))
            {
                Assert.Fail("not before the deadline: " + last);
            }

            await Task.Delay(500);
        }
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();
}
