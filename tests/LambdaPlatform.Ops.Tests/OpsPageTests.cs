using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// The operations page at <c>/</c> driven in Debian's chromium (<see cref="OpsBrowser"/>) against a running platform
/// (<c>lambda up</c> on embedded defaults, no API keys): it loads without console errors, every number it shows equals the
/// API's answer read by the test (<c>GET /v1/views</c>, <c>/v1/pipeline</c>, <c>/v1/ops</c>), and it follows new events
/// without a reload. Screenshots go to <c>artifacts/</c>.
/// </summary>
public sealed partial class OpsPageTests(OpsPageTests.Fixture fixture) : IClassFixture<OpsPageTests.Fixture>
{
    private readonly TestPlatform _platform = fixture.Platform;
    private readonly OpsBrowser _browser = fixture.Browser;

    /// <summary>
    /// One platform with a batch run behind it (a day two days back, loaded from the master dataset) and one browser for the class.
    /// </summary>
    public sealed class Fixture : PlatformWithBrowser
    {
        protected override async Task PrepareAsync(TestPlatform platform)
        {
            var day = DateOnly.FromDateTime(DateTime.UtcNow.AddDays(-2));
            platform.Produce(TestPlatform.Checkouts(60, day.ToDateTime(new TimeOnly(8, 0), DateTimeKind.Utc), TimeSpan.FromMinutes(5), seed: 31));

            // The archiver publishes within its max file age; until then the day has no master files and loads nothing (waiting for
            // it first keeps the batch runs the page shows to a few).
            await TestPlatform.PollAsync(async () => (await platform.GetJsonAsync("/v1/pipeline")).GetProperty("archive").EnumerateArray()
                .Sum(a => a.GetProperty("archivedThrough").GetInt64() + 1) >= 60, "the archiver's progress over the day's records");
            await TestPlatform.PollAsync(async () => (await platform.BatchRunAsync(new { view = "checkout_revenue", day = TestPlatform.Day(day) }))
                .Any(r => r.GetProperty("rowsOut").GetInt64() > 0), "a batch run that loads the day");
        }
    }

    [Fact]
    public async Task Page_LoadsAndRenders_WithNoConsoleErrors()
    {
        await using var session = await _browser.OpenAsync(_platform.BaseUrl);
        await session.WaitForRefreshesAsync(3);

        var shown = await session.ReadAsync();
        Assert.False(shown.GetProperty("mainHidden").GetBoolean(), "the page's data is hidden without API keys");
        Assert.True(shown.GetProperty("keyFormHidden").GetBoolean(), "the page asks for a key although none is configured");
        Assert.False(shown.GetProperty("statusError").GetBoolean(), "status: " + shown.GetProperty("status").GetString());
        Assert.StartsWith("updated ", shown.GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.True(shown.GetProperty("chartCanvas").GetBoolean(), "the ingest chart (uPlot) drew no canvas");
        Assert.NotEmpty(shown.GetProperty("views").EnumerateArray());
        await session.ScreenshotAsync("ops-page-load.png");
        Assert.Empty(session.Errors);
    }

    [Fact]
    public async Task PageNumbers_EqualTheApisAnswers()
    {
        // Fresh records (the ingest figures cover the last 60 s) and dead letters of two reasons.
        var now = DateTime.UtcNow;
        _platform.Produce(TestPlatform.Checkouts(40, now.AddSeconds(-40), TimeSpan.FromSeconds(1), seed: 32));
        _platform.Produce([TestPlatform.Utf8("{\"eventId\": \"broken"), TestPlatform.Utf8("{\"eventId\": \"broken too"), TestPlatform.Utf8("[]")]);
        await TestPlatform.PollAsync(async () => (await _platform.GetJsonAsync("/v1/ops")).GetProperty("ingest").GetProperty("deadLetters").GetInt64() >= 3,
            "the dead letters in GET /v1/ops");

        await using var session = await _browser.OpenAsync(_platform.BaseUrl);
        await session.WaitForRefreshesAsync(1);
        ApiAnswers before = null!, after = null!;
        JsonElement matched = default;
        await OpsPageSession.UntilAsync(async () =>
        {
            before = await ReadApiAsync(_platform);
            matched = await session.ReadAsync();
            after = await ReadApiAsync(_platform);
            return Mismatch(before, matched, after);
        });

        // What was compared is not empty: a batch run, a watermark, records and dead letters, partitions.
        Assert.NotEmpty(before.Pipeline.GetProperty("batchRuns").EnumerateArray());
        Assert.Contains(before.Views.GetProperty("views").EnumerateArray(), v => v.GetProperty("watermark").ValueKind == JsonValueKind.String);
        Assert.NotEmpty(before.Views.GetProperty("speedPartitions").EnumerateArray());
        Assert.True(before.Ops.GetProperty("ingest").GetProperty("records").GetInt64() >= 3, "no records in the window: " + before.Ops.GetProperty("ingest"));
        Assert.NotEmpty(before.Ops.GetProperty("deadLetters").GetProperty("topReasons").EnumerateArray());
        Assert.Contains(before.Accuracy, a => a.GetProperty("reports").GetArrayLength() > 0);
        await session.ScreenshotAsync("ops-page.png");
        Assert.Empty(session.Errors);

        // The comparison catches a page that shows another number: the same reading with one figure changed is a mismatch.
        var changed = JsonNode.Parse(matched.GetRawText())!;
        changed["deadLetters"]!["text"] = "1" + changed["deadLetters"]!["text"]!.GetValue<string>();
        Assert.StartsWith("dead letters in window shown", Mismatch(before, JsonDocument.Parse(changed.ToJsonString()).RootElement, after), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Page_ShowsNewEvents_WithoutAReload()
    {
        await using var session = await _browser.OpenAsync(_platform.BaseUrl);
        await session.WaitForRefreshesAsync(1);
        await session.Page.EvaluateAsync("() => { window.sameDocument = true; }");

        // Settled: the offsets the page shows are the API's.
        long shownOffsets = 0;
        await OpsPageSession.UntilAsync(async () =>
        {
            shownOffsets = NextOffsets(await session.ReadAsync());
            var api = Sum(await _platform.GetJsonAsync("/v1/views"));
            return shownOffsets == api ? null : $"the page shows next offsets summing to {shownOffsets}, the API {api}";
        });

        const int Produced = 25;
        _platform.Produce(TestPlatform.Checkouts(Produced, DateTime.UtcNow.AddSeconds(-Produced), TimeSpan.FromSeconds(1), seed: 33));
        await OpsPageSession.UntilAsync(async () =>
        {
            var now = NextOffsets(await session.ReadAsync());
            return now == shownOffsets + Produced ? null : $"the page shows next offsets summing to {now}, expected {shownOffsets} + {Produced}";
        });

        Assert.True(await session.Page.EvaluateAsync<bool>("() => window.sameDocument === true"), "the page was reloaded");
        Assert.Equal(1, await session.Page.EvaluateAsync<int>("() => performance.getEntriesByType('navigation').length"));
        Assert.Empty(session.Errors);

        static long Sum(JsonElement views) => views.GetProperty("speedPartitions").EnumerateArray().Sum(p => p.GetProperty("nextOffset").GetInt64());
    }

    /// <summary>The API's answers read by the test, as the page reads them.</summary>
    internal sealed record ApiAnswers(JsonElement Views, JsonElement Pipeline, JsonElement Ops, List<JsonElement> Accuracy);

    internal static async Task<ApiAnswers> ReadApiAsync(TestPlatform platform)
    {
        var views = await platform.GetJsonAsync("/v1/views");
        var pipeline = await platform.GetJsonAsync("/v1/pipeline");
        var ops = await platform.GetJsonAsync("/v1/ops");
        var accuracy = new List<JsonElement>();
        foreach (var view in views.GetProperty("views").EnumerateArray())
        {
            accuracy.Add(await platform.GetJsonAsync($"/v1/views/{view.GetProperty("name").GetString()}/accuracy?days=30"));
        }

        return new(views, pipeline, ops, accuracy);
    }

    /// <summary>
    /// Null when every number the page shows equals the API's (both the value it rendered from and its visible text), else the
    /// first difference. Speed lag grows with the clock, so the page's must lie between the API's read just before and just after
    /// (less the page's refresh interval).
    /// </summary>
    internal static string? Mismatch(ApiAnswers before, JsonElement shown, ApiAnswers after)
    {
        if (before.Ops.GetProperty("ingest").GetRawText() != after.Ops.GetProperty("ingest").GetRawText()
            || before.Pipeline.GetProperty("batchRuns").GetRawText() != after.Pipeline.GetProperty("batchRuns").GetRawText())
        {
            return "the API's answers moved while the page was read";
        }

        var views = shown.GetProperty("views").EnumerateArray().ToDictionary(r => r.GetProperty("key").GetString()!);
        var lagAfter = after.Views.GetProperty("views").EnumerateArray().ToDictionary(v => v.GetProperty("name").GetString()!, v => Number(v.GetProperty("speedLagSeconds")));
        foreach (var view in before.Views.GetProperty("views").EnumerateArray())
        {
            var name = view.GetProperty("name").GetString()!;
            if (!views.TryGetValue(name, out var row))
            {
                return $"view {name} is not shown";
            }

            if (Cell(row, 2) is var (w, wText) && (w != Value(view.GetProperty("watermark")) || wText != Time(view.GetProperty("watermark"))))
            {
                return $"view {name}: W shown {w} ('{wText}'), the API's {view.GetProperty("watermark")}";
            }

            if (Cell(row, 3) is var (newest, _) && newest != Value(view.GetProperty("newestRealtimeBucket")))
            {
                return $"view {name}: newest real-time bucket shown {newest}, the API's {view.GetProperty("newestRealtimeBucket")}";
            }

            var (lagValue, lagText) = Cell(row, 4);
            var low = Number(view.GetProperty("speedLagSeconds"));
            var high = lagAfter.GetValueOrDefault(name);
            if (low is null || high is null ? lagValue.Length > 0 || lagText != "–"
                : !double.TryParse(lagValue, NumberStyles.Float, CultureInfo.InvariantCulture, out var lag) || lag < low - 2.5 || lag > high + 0.01
                  || lagText != lag.ToString("N1", CultureInfo.InvariantCulture))
            {
                return $"view {name}: speed lag shown {lagValue} ('{lagText}'), the API's {low} before and {high} after";
            }
        }

        if (views.Count != before.Views.GetProperty("views").GetArrayLength())
        {
            return $"{views.Count} views shown, the API has {before.Views.GetProperty("views").GetArrayLength()}";
        }

        var partitions = shown.GetProperty("partitions").EnumerateArray().ToDictionary(r => r.GetProperty("key").GetString()!);
        foreach (var partition in before.Views.GetProperty("speedPartitions").EnumerateArray())
        {
            var key = partition.GetProperty("partition").GetRawText();
            if (!partitions.TryGetValue(key, out var row) || !IntegerShown(row, 3, partition.GetProperty("nextOffset")) || !IntegerShown(row, 1, partition.GetProperty("kafkaLag")))
            {
                return $"partition {key}: the page does not show next offset {partition.GetProperty("nextOffset")} and Kafka lag {partition.GetProperty("kafkaLag")}";
            }
        }

        var ingest = before.Ops.GetProperty("ingest");
        if (!KpiShown(shown.GetProperty("ingestRecords"), ingest.GetProperty("records")))
        {
            return $"records in window shown {shown.GetProperty("ingestRecords")}, the API's {ingest.GetProperty("records")}";
        }

        if (!KpiShown(shown.GetProperty("deadLetters"), ingest.GetProperty("deadLetters")))
        {
            return $"dead letters in window shown {shown.GetProperty("deadLetters")}, the API's {ingest.GetProperty("deadLetters")}";
        }

        var top = before.Ops.GetProperty("deadLetters").GetProperty("topReasons").EnumerateArray().ToList();
        var topShown = shown.GetProperty("dlqTop").EnumerateArray().ToList();
        if (top.Count != topShown.Count)
        {
            return $"{topShown.Count} dead-letter reasons shown, the API has {top.Count}";
        }

        for (var i = 0; i < top.Count; i++)
        {
            if (Cell(topShown[i], 0).Value != top[i].GetProperty("rule").GetString() || Cell(topShown[i], 1).Value != top[i].GetProperty("path").GetString()
                || !IntegerShown(topShown[i], 2, top[i].GetProperty("records")))
            {
                return $"dead-letter reason {i}: shown {topShown[i]}, the API's {top[i]}";
            }
        }

        var runs = before.Pipeline.GetProperty("batchRuns").EnumerateArray().Take(20).ToList();
        var runsShown = shown.GetProperty("batchRuns").EnumerateArray().ToList();
        if (runs.Count != runsShown.Count)
        {
            return $"{runsShown.Count} batch runs shown, the API has {runs.Count} (the page shows at most 20)";
        }

        for (var i = 0; i < runs.Count; i++)
        {
            var (run, row) = (runs[i], runsShown[i]);
            if (Cell(row, 1).Value != run.GetProperty("view").GetString() || Cell(row, 2).Value != run.GetProperty("day").GetString()
                || !IntegerShown(row, 3, run.GetProperty("rowsIn")) || !IntegerShown(row, 4, run.GetProperty("rowsOut"))
                || Cell(row, 6).Text != Time(run.GetProperty("watermark")))
            {
                return $"batch run {i}: shown {row}, the API's {run}";
            }
        }

        return AccuracyMismatch(before, shown);
    }

    /// <summary>Per view with reports, the latest day's measures (buckets compared, out of bound, max relative error); no box for a view without.</summary>
    private static string? AccuracyMismatch(ApiAnswers api, JsonElement shown)
    {
        var boxes = shown.GetProperty("accuracy").EnumerateArray().ToDictionary(b => b.GetProperty("view").GetString()!, b => b.GetProperty("rows").EnumerateArray().ToList());
        var withReports = api.Accuracy.Where(a => a.GetProperty("reports").GetArrayLength() > 0).ToList();
        if (boxes.Count != withReports.Count)
        {
            return $"accuracy shown for {boxes.Count} views, the API has reports for {withReports.Count}";
        }

        foreach (var report in withReports)
        {
            var view = report.GetProperty("view").GetString()!;
            var measures = report.GetProperty("reports")[0].GetProperty("measures").EnumerateArray().ToList();
            if (!boxes.TryGetValue(view, out var rows) || rows.Count != measures.Count)
            {
                return $"accuracy of {view}: {rows?.Count ?? 0} measures shown, the API's latest report has {measures.Count}";
            }

            for (var i = 0; i < measures.Count; i++)
            {
                var (measure, row) = (measures[i], rows[i]);
                if (row.GetProperty("key").GetString() != measure.GetProperty("name").GetString() || !IntegerShown(row, 2, measure.GetProperty("bucketsCompared"))
                    || !IntegerShown(row, 3, measure.GetProperty("bucketsOutOfBound")) || Cell(row, 4).Value != Value(measure.GetProperty("maxRelativeError")))
                {
                    return $"accuracy of {view}, measure {i}: shown {row}, the API's {measure}";
                }
            }
        }

        return null;
    }

    private static (string Value, string Text) Cell(JsonElement row, int index) =>
        (row.GetProperty("values")[index].GetString() ?? string.Empty, row.GetProperty("texts")[index].GetString() ?? string.Empty);

    private static bool IntegerShown(JsonElement row, int index, JsonElement api) => Cell(row, index) == (Value(api), Integer(api));

    private static bool KpiShown(JsonElement kpi, JsonElement api) =>
        kpi.GetProperty("value").GetString() == Value(api) && kpi.GetProperty("text").GetString() == Integer(api);

    /// <summary>The API's value as the page keeps it in <c>data-value</c>: the string, the number's JSON text, or empty for null.</summary>
    private static string Value(JsonElement api) => api.ValueKind switch
    {
        JsonValueKind.Null => string.Empty,
        JsonValueKind.String => api.GetString()!,
        _ => api.GetRawText(),
    };

    private static double? Number(JsonElement api) => api.ValueKind == JsonValueKind.Number ? api.GetDouble() : null;

    /// <summary>An integer as the page writes it (en-US grouping), or a dash for null.</summary>
    private static string Integer(JsonElement api) => api.ValueKind == JsonValueKind.Null ? "–" : api.GetInt64().ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>A time as the page writes it: <c>2026-12-05 00:00:00Z</c>, or a dash for null.</summary>
    private static string Time(JsonElement api) => api.ValueKind == JsonValueKind.Null ? "–" : Milliseconds().Replace(api.GetString()!.Replace('T', ' '), "Z");

    private static long NextOffsets(JsonElement shown) =>
        shown.GetProperty("partitions").EnumerateArray().Sum(r => long.Parse(Cell(r, 3).Value, CultureInfo.InvariantCulture));

    [GeneratedRegex(@"\.\d+Z$")]
    private static partial Regex Milliseconds();
}
