using System.Globalization;
using System.Text.Json;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Batch.Tests;

/// <summary>
/// The batch recompute over a real Parquet master dataset with real chDB: batch rows equal an independent
/// exact computation over the distinct events; runs are idempotent and survive a crash mid-run; a late
/// event makes its day dirty and the next run corrects it; a view added later is backfilled.
/// </summary>
[Collection(ArchiveCollection.Name)]
public sealed class BatchRecomputeTests : IAsyncLifetime
{
    private static readonly DateTime Day0 = new(2026, 10, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly EventSchemaRegistry Schemas = EventSchemaRegistry.LoadDefault();

    private readonly string _root = Path.Combine(Path.GetTempPath(), "batch-" + Guid.NewGuid().ToString("N"));
    private readonly FixedClock _clock = new(Day0.AddDays(5));
    private ChDbClickHouse _clickHouse = null!;
    private MasterDataset _master = null!;
    private readonly long[] _nextOffsets = new long[4];

    public async Task InitializeAsync()
    {
        _clickHouse = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(_root, "chdb") });
        _master = new MasterDataset(_root, _clock);
    }

    public async Task DisposeAsync()
    {
        await _clickHouse.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    private static IReadOnlyList<ViewDefinition> ShippedViews => ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), Schemas);

    [Fact]
    public async Task Run_GivesExactRowsOverDistinctEvents_AndAdvancesW()
    {
        var events = await ArchiveAsync(Generate(seed: 1, days: 3, perDay: 3_000, duplicateEvery: 20));
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, _clock);
        var results = await recompute.RunAsync();

        Assert.Equal(6, results.Count); // 2 views x 3 closed days
        Assert.Equal(events.Count(e => e.EventType == "user.action.checkout"), results.Where(r => r.View == "checkout_revenue").Sum(r => r.RowsIn));
        await AssertExactAsync(events);
        Assert.Equal(Day0.AddDays(3), await recompute.ReadWatermarkAsync(new ViewSql(ShippedViews[0])));
    }

    [Fact]
    public async Task Run_IsIdempotent_AndACrashMidRunLeavesThePreviousStateInPlace()
    {
        var events = await ArchiveAsync(Generate(seed: 2, days: 3, perDay: 2_000, duplicateEvery: 0));
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, _clock);

        // A run killed after its first view-day: that day is loaded and W covers it, nothing else moved.
        using var crash = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => recompute.RunAsync(progress: new Synchronous(p => crash.Cancel()), cancellationToken: crash.Token));
        var afterCrash = await SnapshotAsync();
        Assert.True(afterCrash.Count > 0);

        await recompute.RunAsync();
        var first = await SnapshotAsync();
        await recompute.RunAsync(day: DateOnly.FromDateTime(Day0)); // an explicit re-run of a day
        await recompute.RunAsync();
        Assert.Equal(first, await SnapshotAsync());
        await AssertExactAsync(events);
    }

    [Fact]
    public async Task Run_DropsStagingTablesAKilledRunLeftBehind_AndKeepsOtherTables()
    {
        var events = await ArchiveAsync(Generate(seed: 4, days: 1, perDay: 500, duplicateEvery: 0));
        var view = new ViewSql(ShippedViews.Single(v => v.Name == "checkout_revenue"));
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, _clock);
        await recompute.RunAsync();

        // What a SIGKILL between CREATE and DROP of a staging table leaves (its finally never runs).
        await _clickHouse.ExecuteAsync(view.CreateBatchTable("checkout_revenue_batch_staging_0123456789ab"));
        await _clickHouse.ExecuteAsync(view.CreateBatchTable("checkout_revenue_batch_kept"));
        await recompute.RunAsync();

        var tables = (await QueryAsync("SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'checkout_revenue%' ORDER BY name")).Select(r => r[0]).ToList();
        Assert.DoesNotContain("checkout_revenue_batch_staging_0123456789ab", tables);
        Assert.Contains("checkout_revenue_batch_kept", tables);
        await AssertExactAsync(events);
    }

    [Fact]
    public async Task LateEvent_MakesItsDayDirty_AndTheNextRunCorrectsIt()
    {
        var events = await ArchiveAsync(Generate(seed: 3, days: 2, perDay: 1_000, duplicateEvery: 0));
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, _clock);
        await recompute.RunAsync();
        var checkout = new ViewSql(ShippedViews.Single(v => v.Name == "checkout_revenue"));
        Assert.Empty(await recompute.DaysToRunAsync(checkout));

        // A straggler for the first (finished) day arrives later.
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 99 });
        var straggler = generator.Next("user.action.checkout", Day0.AddHours(12).AddSeconds(17));
        events.AddRange(await ArchiveAsync([straggler]));
        Assert.Equal([DateOnly.FromDateTime(Day0)], await recompute.DaysToRunAsync(checkout));

        var results = await recompute.RunAsync();
        Assert.All(results, r => Assert.Equal(DateOnly.FromDateTime(Day0), r.Day));
        await AssertExactAsync(events);
        Assert.Equal(Day0.AddDays(2), await recompute.ReadWatermarkAsync(checkout));
    }

    [Fact]
    public async Task ViewAddedLater_IsBackfilledOverTheWholeHistory()
    {
        var events = await ArchiveAsync(Generate(seed: 4, days: 3, perDay: 1_000, duplicateEvery: 0));
        using (var first = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, _clock))
        {
            await first.RunAsync();
        }

        var carts = ViewLoader.Parse("""
            view: cart_adds
            events: [user.action.add_to_cart]
            bucket: 1d
            dimensions:
              store: payload.location
            measures:
              adds: count
              quantity: sum(payload.quantity)
            """, "cart_adds.yaml", Schemas);
        using var later = new BatchRecompute(_clickHouse, _clickHouse, [.. ShippedViews, carts], new BatchOptions { DataRoot = _root }, _clock);
        var results = await later.RunAsync();
        Assert.Equal(3, results.Count(r => r.View == "cart_adds"));
        Assert.DoesNotContain(results, r => r.View != "cart_adds");

        var truth = events.Where(e => e.EventType == "user.action.add_to_cart")
            .GroupBy(e => (e.Timestamp.Date, Payload(e).GetProperty("location").GetString()))
            .ToDictionary(g => $"{g.Key.Date:yyyy-MM-dd HH:mm:ss}\t{g.Key.Item2}", g => (g.Count(), g.Sum(e => Payload(e).GetProperty("quantity").GetInt32())));
        var rows = await QueryAsync("SELECT bucket, store, adds, quantity FROM cart_adds_batch ORDER BY bucket, store");
        Assert.Equal(truth.Count, rows.Count);
        foreach (var r in rows)
        {
            Assert.Equal(truth[$"{r[0]}\t{r[1]}"], (int.Parse(r[2], CultureInfo.InvariantCulture), (int)double.Parse(r[3], CultureInfo.InvariantCulture)));
        }
    }

    [Fact]
    public async Task Run_HoldsW_WhileTheArchiveLacksEventsTheRealtimeSideCounted_AndTheMergedViewLosesNone()
    {
        // 1,000 checkouts of a closed day: the speed layer counted all of them (real-time rows up to offset 999), the
        // archiver published only the first 600 before it died.
        var day = DateOnly.FromDateTime(Day0);
        var checkouts = Checkouts(seed: 7, day: Day0, count: 1_000);
        await WriteRealtimeRowsAsync(checkouts);
        await ArchiveAsync(checkouts[..600], record: true);
        var view = new ViewSql(ShippedViews.Single(v => v.Name == "checkout_revenue"));
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, _clock);
        Assert.Equal(1_000L, await OrdersInMergedViewAsync(day));

        var results = await recompute.RunAsync(view: "checkout_revenue");
        var result = Assert.Single(results);
        Assert.Null(result.Watermark);
        Assert.Contains("partition 0 through offset 999", result.WatermarkHeld, StringComparison.Ordinal);
        Assert.Contains("only through offset 599", result.WatermarkHeld, StringComparison.Ordinal);
        Assert.Equal(DateTime.UnixEpoch, await recompute.ReadWatermarkAsync(view));
        Assert.Equal(600L, long.Parse((await QueryAsync("SELECT sum(orders) FROM checkout_revenue_batch"))[0][0], CultureInfo.InvariantCulture)); // computed, not served
        Assert.Equal(1_000L, await OrdersInMergedViewAsync(day)); // still every event, from the real-time rows

        // The archiver catches up: the next run makes the day exact, moves W past it and only then drops its real-time rows.
        await ArchiveAsync(checkouts[600..], record: true);
        var second = Assert.Single(await recompute.RunAsync(view: "checkout_revenue"));
        Assert.Null(second.WatermarkHeld);
        Assert.Equal(Day0.AddDays(1), second.Watermark);
        Assert.Equal(1_000L, await OrdersInMergedViewAsync(day));
        Assert.Equal("batch", (await QueryAsync("SELECT DISTINCT side FROM checkout_revenue"))[0][0]);
        Assert.Empty(await QueryAsync("SELECT 1 FROM checkout_revenue_rt LIMIT 1"));
    }

    [Fact]
    public async Task Run_HoldsW_BeforeAnEarlierDayThatIsHeld_AndBeforeAnOpenDay()
    {
        // Day 0: the archive lags behind the real-time side. Day 1: complete. Day 2 is still open (allowed lateness).
        var day0 = Checkouts(seed: 8, day: Day0, count: 300);
        var day1 = Checkouts(seed: 9, day: Day0.AddDays(1), count: 300);
        await WriteRealtimeRowsAsync(day0);
        await ArchiveAsync(day0[..100], record: true);
        await ArchiveAsync(day1, record: true, partition: 1);
        var open = new FixedClock(Day0.AddDays(3).AddMinutes(30)); // day 2 ends at Day0+3, closes an hour later
        var day2 = Checkouts(seed: 10, day: Day0.AddDays(2), count: 50);
        await ArchiveAsync(day2, record: true, partition: 1);
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, ShippedViews, new BatchOptions { DataRoot = _root }, open);
        var results = (await recompute.RunAsync(view: "checkout_revenue")).ToDictionary(r => r.Day);

        Assert.Contains("the archiver is down or behind", results[DateOnly.FromDateTime(Day0)].WatermarkHeld, StringComparison.Ordinal);
        Assert.Contains("an earlier day, is not below W yet", results[DateOnly.FromDateTime(Day0.AddDays(1))].WatermarkHeld, StringComparison.Ordinal);
        Assert.DoesNotContain(DateOnly.FromDateTime(Day0.AddDays(2)), results.Keys); // open: not planned
        Assert.Contains("open for late events", Assert.Single(await recompute.RunAsync(view: "checkout_revenue", day: DateOnly.FromDateTime(Day0.AddDays(2)))).WatermarkHeld, StringComparison.Ordinal);
        Assert.Equal(DateTime.UnixEpoch, await recompute.ReadWatermarkAsync(new ViewSql(ShippedViews.Single(v => v.Name == "checkout_revenue"))));
    }

    private async Task<long> OrdersInMergedViewAsync(DateOnly day)
    {
        var start = (long)(day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) - DateTime.UnixEpoch).TotalSeconds;
        var text = (await QueryAsync($"SELECT sum(orders) FROM checkout_revenue WHERE bucket >= toDateTime({start}, 'UTC') AND bucket < toDateTime({start + 86_400}, 'UTC')"))[0][0];
        return long.Parse(text, CultureInfo.InvariantCulture);
    }

    private static List<GeneratedEvent> Checkouts(int seed, DateTime day, int count)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed, Users = 200 });
        return [.. Enumerable.Range(0, count).Select(i => generator.Next("user.action.checkout", day.AddHours(9).AddSeconds(i * 11)))];
    }

    /// <summary>
    /// Real-time delta rows of <paramref name="events"/> as one speed-layer flush of Kafka partition 0 would write them (at
    /// the offsets <see cref="ArchiveAsync"/> gives the same events next): every measure's state through its own type.
    /// </summary>
    private async Task WriteRealtimeRowsAsync(List<GeneratedEvent> events)
    {
        var view = ShippedViews.Single(v => v.Name == "checkout_revenue");
        var sql = new ViewSql(view);
        foreach (var statement in sql.CreateServingObjects)
        {
            await _clickHouse.ExecuteAsync(statement);
        }

        var first = _nextOffsets[0];
        var last = first + events.Count - 1;
        var rows = new List<object?[]>();
        foreach (var group in events.Select((e, i) => (Event: e, Offset: first + i)).GroupBy(x => (Floor(x.Event.Timestamp, TimeSpan.FromMinutes(1)), Payload(x.Event).GetProperty("location").GetString()!)))
        {
            var states = view.Measures.Select(m => m.NewState()).ToList();
            foreach (var (e, _) in group)
            {
                for (var m = 0; m < states.Count; m++)
                {
                    var path = view.Measures[m].Path;
                    var value = path is null ? FieldValue.Missing
                        : path.Root == FieldRoot.UserId ? FieldValue.OfText(e.UserId)
                        : FieldValue.Of(Payload(e).GetProperty(path.PayloadPath[0]).GetDouble());
                    states[m].Add(value);
                }
            }

            var row = new List<object?> { group.Key.Item1, group.Key.Item2, (ushort)0, (ulong)group.Min(x => x.Offset), (ulong)last };
            states.ForEach(s => s.WriteTo(row));
            rows.Add([.. row]);
        }

        await _clickHouse.InsertAsync(sql.RealtimeTable, [.. sql.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type))], rows);
    }

    private async Task AssertExactAsync(List<GeneratedEvent> events)
    {
        var distinct = events.DistinctBy(e => e.EventId).ToList();
        var activity = distinct.GroupBy(e => $"{Floor(e.Timestamp, TimeSpan.FromHours(1)):yyyy-MM-dd HH:mm:ss}\t{e.EventType}\t{Root(e).GetProperty("metadata").GetProperty("source").GetString()}")
            .ToDictionary(g => g.Key, g => $"{g.Count()}\t{g.Select(e => e.UserId).Distinct().Count()}");
        var activityRows = await QueryAsync("SELECT bucket, eventType, source, events, users FROM activity_by_type_batch ORDER BY bucket, eventType, source");
        Assert.Equal(activity.Count, activityRows.Count);
        foreach (var r in activityRows)
        {
            Assert.Equal(activity[$"{r[0]}\t{r[1]}\t{r[2]}"], $"{r[3]}\t{r[4]}");
        }

        var checkout = distinct.Where(e => e.EventType == "user.action.checkout")
            .GroupBy(e => $"{Floor(e.Timestamp, TimeSpan.FromMinutes(1)):yyyy-MM-dd HH:mm:ss}\t{Payload(e).GetProperty("location").GetString()}")
            .ToDictionary(g => g.Key, g => (
                Orders: g.Count(),
                Revenue: g.Sum(e => Payload(e).GetProperty("cartValue").GetDecimal()),
                Buyers: g.Select(e => e.UserId).Distinct().Count(),
                P99: g.Select(e => Payload(e).GetProperty("cartValue").GetDouble()).Order().ElementAt((int)Math.Ceiling(0.99m * g.Count()) - 1)));
        var checkoutRows = await QueryAsync("SELECT bucket, store, orders, revenue, buyers, p99_cart FROM checkout_revenue_batch ORDER BY bucket, store");
        Assert.Equal(checkout.Count, checkoutRows.Count);
        foreach (var r in checkoutRows)
        {
            var t = checkout[$"{r[0]}\t{r[1]}"];
            Assert.Equal(t.Orders, int.Parse(r[2], CultureInfo.InvariantCulture));
            Assert.Equal((double)t.Revenue, double.Parse(r[3], CultureInfo.InvariantCulture), 6);
            Assert.Equal(t.Buyers, int.Parse(r[4], CultureInfo.InvariantCulture));
            Assert.Equal(t.P99, double.Parse(r[5], CultureInfo.InvariantCulture));
        }
    }

    private async Task<List<string>> SnapshotAsync() =>
        [.. (await QueryAsync("SELECT * FROM checkout_revenue_batch ORDER BY bucket, store")).Select(r => string.Join('|', r)),
         .. (await QueryAsync("SELECT * FROM activity_by_type_batch ORDER BY bucket, eventType, source")).Select(r => string.Join('|', r)),
         .. (await QueryAsync("SELECT view, max(watermark) FROM lambda_watermarks GROUP BY view ORDER BY view")).Select(r => string.Join('|', r))];

    private async Task<List<string[]>> QueryAsync(string sql)
    {
        await using var stream = await _clickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return [.. (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))];
    }

    private static List<GeneratedEvent> Generate(int seed, int days, int perDay, int duplicateEvery)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed, Users = 500 });
        var events = new List<GeneratedEvent>();
        for (var d = 0; d < days; d++)
        {
            for (var i = 0; i < perDay; i++)
            {
                var e = generator.Next(Day0.AddDays(d).AddSeconds(i * (86_000.0 / perDay)));
                events.Add(e);
                if (duplicateEvery > 0 && i % duplicateEvery == 0)
                {
                    events.Add(e);
                }
            }
        }

        return events;
    }

    /// <summary>
    /// Publishes events as master-dataset files (one per partition and hour), as the archiver does: files, then the days
    /// marked changed, then (unless <paramref name="record"/> is false) the partition recorded as archived through them.
    /// </summary>
    private async Task<List<GeneratedEvent>> ArchiveAsync(List<GeneratedEvent> events, bool record = true, int partition = 0)
    {
        var decoder = new EventDecoder(Schemas, new EventDecoderOptions { Clock = _clock });
        foreach (var hour in events.GroupBy(e => HourKey.Of(e.Timestamp)))
        {
            var buffer = new MasterEventBuffer();
            var first = _nextOffsets[partition];
            foreach (var e in hour)
            {
                Assert.True(decoder.TryDecode(e.Json, out var decoded, out _));
                buffer.Add(decoded!, partition, _nextOffsets[partition]++);
            }

            Directory.CreateDirectory(_master.HourPath(hour.Key));
            await MasterParquet.WriteFileAsync(buffer, _master.FilePath(hour.Key, partition, new OffsetRange(first, _nextOffsets[partition] - 1)));
        }

        await _master.MarkChangedAsync(events.Select(e => DateOnly.FromDateTime(e.Timestamp)).Distinct());
        if (record && events.Count > 0)
        {
            await _master.RecordArchivedAsync(partition, _nextOffsets[partition] - 1);
        }

        return events;
    }

    private static JsonElement Root(GeneratedEvent e) => JsonDocument.Parse(e.Json).RootElement;

    private static JsonElement Payload(GeneratedEvent e) => Root(e).GetProperty("payload");

    private static DateTime Floor(DateTime t, TimeSpan size) => new(t.Ticks - (t.Ticks % size.Ticks), DateTimeKind.Utc);

    private sealed class Synchronous(Action<BatchProgress> report) : IProgress<BatchProgress>
    {
        public void Report(BatchProgress value) => report(value);
    }

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
