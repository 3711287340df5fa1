using System.Globalization;
using System.Text;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Sketches;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;
using Xunit.Abstractions;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// The serving SQL that <see cref="ViewSql"/> generates, run for real on chDB 26.5 and clickhouse-server 18.16: the DDL,
/// real-time deltas built with the C# sketches and merged in SQL, and the batch/real-time boundary at the watermark.
/// Each test works in its own database.
/// </summary>
public abstract class ViewSqlContractTests(IClickHouse clickHouse, ITestOutputHelper output)
{
    private const double Tolerance = 1e-9;

    private static readonly EventSchemaRegistry Schemas = EventSchemaRegistry.LoadDefault();

    /// <summary>Every measure kind, including min, max and top-k, which the shipped views do not use.</summary>
    private static readonly ViewDefinition AllMeasures = ViewLoader.Parse(
        """
        view: all_measures
        description: Every measure kind, for the SQL contract tests.
        events: [user.action.checkout]
        bucket: 5m
        dimensions:
          store: payload.location
          currency: payload.currency
        measures:
          orders: count
          revenue: sum(payload.cartValue)
          smallest: min(payload.cartValue)
          largest: max(payload.cartValue)
          buyers: distinct(userId)
          p50: quantile(payload.cartValue, 0.5)
          top_users: topk(userId, 2)
          top_items: topk(payload.coupon, 3)
        batch:
          schedule: "0 * * * *"
        """,
        "all_measures.yaml",
        Schemas);

    protected static IReadOnlyList<ViewDefinition> Shipped { get; } = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), Schemas);

    protected IClickHouse ClickHouse { get; } = clickHouse;

    protected ITestOutputHelper Output { get; } = output;

    [Fact]
    public async Task CreateServingObjects_CreatesEveryObject_WhenRunTwice()
    {
        var database = await NewDatabaseAsync();
        Assert.Equal(["activity_by_type", "checkout_revenue"], Shipped.Select(v => v.Name).Order(StringComparer.Ordinal));

        foreach (var view in Shipped.Append(AllMeasures))
        {
            var sql = new ViewSql(view, database);
            for (var round = 0; round < 2; round++)
            {
                foreach (var statement in sql.CreateServingObjects)
                {
                    await ClickHouse.ExecuteAsync(statement);
                }
            }
        }

        var tables = await Tsv.ReadAsync(ClickHouse, $"SELECT name, engine FROM system.tables WHERE database = '{database}' ORDER BY name");
        string?[][] expected =
        [
            ["activity_by_type", "View"], ["activity_by_type_batch", "MergeTree"], ["activity_by_type_rt", "ReplacingMergeTree"],
            ["all_measures", "View"], ["all_measures_batch", "MergeTree"], ["all_measures_rt", "ReplacingMergeTree"],
            ["checkout_revenue", "View"], ["checkout_revenue_batch", "MergeTree"], ["checkout_revenue_rt", "ReplacingMergeTree"],
            ["lambda_watermarks", "ReplacingMergeTree"],
        ];
        Assert.Equal(expected, tables);
        foreach (var view in Shipped.Append(AllMeasures))
        {
            var sql = new ViewSql(view, database);
            Assert.Equal(ColumnsAsCreated(sql.RealtimeColumns), await ColumnsAsync(database, view.Name + "_rt"));
            Assert.Equal(ColumnsAsCreated(sql.BatchColumns), await ColumnsAsync(database, view.Name + "_batch"));
            Assert.Equal(ColumnsAsCreated(sql.BatchColumns).Append("side String"), await ColumnsAsync(database, view.Name));
            Assert.Empty(await Tsv.ReadAsync(ClickHouse, $"SELECT * FROM {sql.MergedView}"));
        }
    }

    [Theory]
    [InlineData("checkout_revenue")]
    [InlineData("activity_by_type")]
    [InlineData("all_measures")]
    public async Task MergedView_ReturnsMergedSketches_WhenRealtimeDeltasComeFromSeveralPartitionsAndReplays(string viewName)
    {
        var sql = await CreateViewAsync(viewName);
        var bucket = sql.View.Bucket.Floor(new DateTime(2024, 5, 1, 10, 7, 0, DateTimeKind.Utc));
        var next = bucket.Add(sql.View.Bucket.Size);
        var random = new Random(viewName.Length);

        // Bucket 1, dimensions "a": two partitions, partition 0 flushed twice (~20k users: the raw HyperLogLog estimate).
        // Bucket 1, dimensions "b": a few events (linear counting). Bucket 2, "a": a single event.
        var deltas = new List<Delta>
        {
            new(bucket, "a", 0, 100, Events(random, 1_500, users: 1_000)),
            new(bucket, "a", 1, 7, Events(random, 20_000, users: 30_000)),
            new(bucket, "a", 0, 1_600, Events(random, 300, users: 500)),
            new(bucket, "b", 3, 42, Events(random, 40, users: 25)),
            new(next, "a", 2, 0, [new("only-user", 0, "only-item")]),
        };
        var columns = sql.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type)).ToList();
        await ClickHouse.InsertAsync(sql.RealtimeTable, columns, deltas.Select(d => d.Row(sql.View)));

        // A replayed flush (same bucket, dimensions, partition and first offset) in another insert: FINAL must collapse it.
        await ClickHouse.InsertAsync(sql.RealtimeTable, columns, [deltas[0].Row(sql.View)]);

        var expected = deltas
            .GroupBy(d => (d.Bucket, d.Dimension))
            .OrderBy(g => g.Key.Bucket).ThenBy(g => g.Key.Dimension, StringComparer.Ordinal)
            .Select(g => ExpectedRealtimeRow(sql.View, g.Key.Bucket, g.Key.Dimension, [.. g]))
            .ToList();
        var merged = await ReadMergedAsync(sql);
        foreach (var row in merged)
        {
            Output.WriteLine($"{ClickHouse.BackendName}: {string.Join(" | ", row.Select(c => c is { Length: > 60 } ? c[..60] + "…" : c))}");
        }

        AssertRows(expected, merged);
        Assert.Equal(deltas.Count + 1, int.Parse(await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {sql.RealtimeTable}"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task MergedView_AnswersEveryBucketFromExactlyOneSide_WhenWatermarkMoves()
    {
        var sql = await CreateViewAsync("activity_by_type");
        await InsertBatchAsync(sql, [0, 1, 2, 3]);
        await InsertRealtimeAsync(sql, [2, 3, 4, 5]);

        // No watermark yet: W = 1970-01-01, so every real-time bucket answers and no batch row does.
        AssertRows(Boundary(batch: [], realtime: [2, 3, 4, 5]), await ReadMergedAsync(sql));

        // Another view's watermark changes nothing here.
        await SetWatermarkAsync(sql, "checkout_revenue", 5);
        AssertRows(Boundary(batch: [], realtime: [2, 3, 4, 5]), await ReadMergedAsync(sql));

        await SetWatermarkAsync(sql, sql.View.Name, 3);
        AssertRows(Boundary(batch: [0, 1, 2], realtime: [3, 4, 5]), await ReadMergedAsync(sql));

        await SetWatermarkAsync(sql, sql.View.Name, 4);
        AssertRows(Boundary(batch: [0, 1, 2, 3], realtime: [4, 5]), await ReadMergedAsync(sql));
    }

    [Fact]
    public async Task MergedView_AnswersFromTheOtherSide_WhenOneSideIsEmpty()
    {
        var batchEmpty = await CreateViewAsync("activity_by_type");
        await InsertRealtimeAsync(batchEmpty, [2, 3, 4, 5]);
        await SetWatermarkAsync(batchEmpty, batchEmpty.View.Name, 3);

        var realtimeEmpty = await CreateViewAsync("activity_by_type");
        await InsertBatchAsync(realtimeEmpty, [0, 1, 2, 3]);
        await SetWatermarkAsync(realtimeEmpty, realtimeEmpty.View.Name, 4);

        var bothEmpty = await CreateViewAsync("activity_by_type");
        await SetWatermarkAsync(bothEmpty, bothEmpty.View.Name, 4);

        // Real-time rows below W (bucket 2) are not answered: batch owns those buckets, even before it has rows.
        AssertRows(Boundary(batch: [], realtime: [3, 4, 5]), await ReadMergedAsync(batchEmpty));
        AssertRows(Boundary(batch: [0, 1, 2, 3], realtime: []), await ReadMergedAsync(realtimeEmpty));
        Assert.Empty(await ReadMergedAsync(bothEmpty));
    }

    protected static string Hex(string value) => Convert.ToHexString(Encoding.UTF8.GetBytes(value));

    /// <summary>Creates a database of its own for one test.</summary>
    protected async Task<string> NewDatabaseAsync()
    {
        var database = "db_" + Guid.NewGuid().ToString("N");
        await ClickHouse.ExecuteAsync($"CREATE DATABASE {database}");
        return database;
    }

    /// <summary>Creates a view's serving objects in a new database.</summary>
    protected async Task<ViewSql> CreateViewAsync(string viewName)
    {
        var sql = new ViewSql(viewName == AllMeasures.Name ? AllMeasures : Shipped.Single(v => v.Name == viewName), await NewDatabaseAsync());
        foreach (var statement in sql.CreateServingObjects)
        {
            await ClickHouse.ExecuteAsync(statement);
        }

        return sql;
    }

    /// <summary>
    /// The merged view's rows, ordered by bucket and dimensions, in a text form both servers print alike: the bucket
    /// as Unix seconds, arrays joined with commas (strings hex-encoded), then <c>side</c>.
    /// </summary>
    protected async Task<List<string?[]>> ReadMergedAsync(ViewSql sql) =>
        await Tsv.ReadAsync(ClickHouse, $"SELECT {Projection(sql.View)}, side FROM {sql.MergedView} ORDER BY {OrderBy(sql.View)}");

    /// <summary>The batch table's columns of a SELECT (e.g. <see cref="ViewSql.BatchSelect"/>) in the form of <see cref="ReadMergedAsync"/>.</summary>
    protected async Task<List<string?[]>> ReadSelectAsync(ViewDefinition view, string select) =>
        await Tsv.ReadAsync(ClickHouse, $"SELECT {Projection(view)} FROM ({select}) ORDER BY {OrderBy(view)}");

    protected async Task SetWatermarkAsync(ViewSql sql, string viewName, int hour) =>
        await ClickHouse.ExecuteAsync($"INSERT INTO {sql.WatermarkTableName} VALUES ({ViewSql.Literal(viewName)}, toDateTime({UnixSeconds(Hour(hour))}), now())");

    /// <summary>Compares rows cell by cell: doubles to a relative 1e-9, everything else exactly as text.</summary>
    protected static void AssertRows(IReadOnlyList<object?[]> expected, IReadOnlyList<string?[]> actual)
    {
        Assert.True(expected.Count == actual.Count, $"expected {expected.Count} rows, got {actual.Count}:\n{string.Join('\n', actual.Select(r => string.Join(" | ", r)))}");
        for (var r = 0; r < expected.Count; r++)
        {
            Assert.Equal(expected[r].Length, actual[r].Length);
            for (var c = 0; c < expected[r].Length; c++)
            {
                var want = expected[r][c];
                var got = actual[r][c];
                var context = $"row {r}, column {c}: expected {Format(want)}, got {got ?? "NULL"} (row: {string.Join(" | ", actual[r])})";
                if (want is double number)
                {
                    Assert.NotNull(got);
                    var value = Tsv.ParseDouble(got);
                    Assert.True(
                        double.IsNaN(number) ? double.IsNaN(value) : Math.Abs(value - number) <= Tolerance * Math.Max(1, Math.Abs(number)),
                        context);
                }
                else
                {
                    Assert.True(Format(want) == (got ?? "NULL"), context);
                }
            }
        }
    }

    protected static long UnixSeconds(DateTime value) => (long)(value - DateTime.UnixEpoch).TotalSeconds;

    private static string Format(object? value) => value switch
    {
        null => "NULL",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    private static string Projection(ViewDefinition view) => string.Join(", ", new ViewSql(view).BatchColumns.Select(c =>
    {
        var name = ViewSql.Quote(c.Name);
        return c.Type switch
        {
            "DateTime" => $"toUnixTimestamp({name})",
            "Array(String)" => $"arrayStringConcat(arrayMap(x -> hex(x), {name}), ',')",
            "Array(UInt64)" => $"arrayStringConcat(arrayMap(x -> toString(x), {name}), ',')",
            _ => name,
        };
    }));

    private static string OrderBy(ViewDefinition view) => string.Join(", ", view.Dimensions.Select(d => ViewSql.Quote(d.Name)).Prepend("bucket"));

    private static IEnumerable<string> ColumnsAsCreated(IReadOnlyList<(string Name, string Type)> columns) =>
        columns.Select(c => $"{c.Name} {(c.Type == "DateTime" ? "DateTime('UTC')" : c.Type)}");

    private async Task<IEnumerable<string>> ColumnsAsync(string database, string table) =>
        (await Tsv.ReadAsync(ClickHouse, $"SELECT name, type FROM system.columns WHERE database = '{database}' AND table = '{table}'"))
            .Select(r => $"{r[0]} {r[1]}");

    private static DateTime Hour(int hour) => new DateTime(2024, 5, 1, 0, 0, 0, DateTimeKind.Utc).AddHours(hour);

    // The boundary tests use activity_by_type: dimensions (eventType, source); measures events (count), users (distinct).
    private const string BoundaryType = "user.action.checkout";
    private const string BoundarySource = "web";

    private async Task InsertBatchAsync(ViewSql sql, int[] hours) =>
        await ClickHouse.InsertAsync(
            sql.BatchTable,
            [.. sql.BatchColumns.Select(c => new ClickHouseColumn(c.Name, c.Type))],
            hours.Select(h => new object?[] { Hour(h), BoundaryType, BoundarySource, BatchEvents(h), (ulong)h + 1 }));

    private async Task InsertRealtimeAsync(ViewSql sql, int[] hours) =>
        await ClickHouse.InsertAsync(
            sql.RealtimeTable,
            [.. sql.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type))],
            hours.Select(h => new Delta(Hour(h), BoundaryType, 0, (ulong)h * 10, [.. Enumerable.Range(0, h + 1).Select(i => new Event("u" + i, i, "x"))]).Row(sql.View, dimensionValues: [BoundaryType, BoundarySource])));

    private static ulong BatchEvents(int hour) => 1000 + (ulong)hour;

    private static List<object?[]> Boundary(int[] batch, int[] realtime) =>
    [
        .. batch.Select(h => new object?[] { UnixSeconds(Hour(h)), BoundaryType, BoundarySource, BatchEvents(h), (ulong)h + 1, "batch" }),
        .. realtime.Select(h => new object?[] { UnixSeconds(Hour(h)), BoundaryType, BoundarySource, (ulong)h + 1, (ulong)h + 1, "realtime" }),
    ];

    private static List<Event> Events(Random random, int count, int users) =>
        [.. Enumerable.Range(0, count).Select(_ => new Event(
            "user-" + random.Next(users).ToString(CultureInfo.InvariantCulture),
            random.Next(20) == 0 ? 0 : Math.Round(random.NextDouble() * 1000, 2),
            "sku-" + ((int)Math.Sqrt(random.Next(400))).ToString(CultureInfo.InvariantCulture)))];

    /// <summary>What the merged view must answer for real-time deltas of one bucket and dimensions (replays left out).</summary>
    private static object?[] ExpectedRealtimeRow(ViewDefinition view, DateTime bucket, string dimension, IReadOnlyList<Delta> deltas)
    {
        var events = deltas.SelectMany(d => d.Events).ToList();
        var row = new List<object?> { UnixSeconds(bucket) };
        row.AddRange(view.Dimensions.Select(_ => dimension));
        foreach (var m in view.Measures)
        {
            switch (m)
            {
                case CountMeasure:
                    row.Add((ulong)events.Count);
                    break;
                case SumMeasure:
                    row.Add(deltas.Sum(d => d.Events.Sum(e => e.Value)));
                    break;
                case MinMeasure:
                    row.Add(events.Min(e => e.Value));
                    break;
                case MaxMeasure:
                    row.Add(events.Max(e => e.Value));
                    break;
                case DistinctMeasure:
                    var merged = new HyperLogLog();
                    foreach (var d in deltas)
                    {
                        merged.Merge(d.Users());
                    }

                    row.Add(merged.Estimate());
                    break;
                case QuantileMeasure quantile:
                    var sketch = new DDSketch();
                    foreach (var d in deltas)
                    {
                        sketch.Merge(d.Sketch());
                    }

                    row.Add(sketch.Quantile(quantile.Q));
                    break;
                case TopKMeasure topk:
                    var top = deltas.SelectMany(d => d.TopItems().Counters)
                        .GroupBy(kv => kv.Key, StringComparer.Ordinal)
                        .Select(g => (Item: g.Key, Count: g.Aggregate(0UL, (sum, kv) => sum + kv.Value)))
                        .OrderByDescending(x => x.Count).ThenBy(x => x.Item, StringComparer.Ordinal)
                        .Take(topk.K)
                        .ToList();
                    row.Add(string.Join(',', top.Select(x => Hex(x.Item))));
                    row.Add(string.Join(',', top.Select(x => x.Count.ToString(CultureInfo.InvariantCulture))));
                    break;
            }
        }

        row.Add("realtime");
        return [.. row];
    }

    private sealed record Event(string User, double Value, string Item);

    /// <summary>One real-time delta row, as the speed layer writes it: mergeable states of some events.</summary>
    private sealed record Delta(DateTime Bucket, string Dimension, ushort Partition, ulong FirstOffset, IReadOnlyList<Event> Events)
    {
        public HyperLogLog Users()
        {
            var sketch = new HyperLogLog();
            foreach (var e in Events)
            {
                sketch.Add(e.User);
            }

            return sketch;
        }

        public DDSketch Sketch()
        {
            var sketch = new DDSketch();
            foreach (var e in Events)
            {
                sketch.Add(e.Value);
            }

            return sketch;
        }

        public SpaceSaving TopItems()
        {
            var summary = new SpaceSaving(1_000);
            foreach (var e in Events)
            {
                summary.Add(e.Item);
            }

            return summary;
        }

        /// <summary>The row in the order of <see cref="ViewSql.RealtimeColumns"/>; every dimension gets <see cref="Dimension"/> unless given.</summary>
        public object?[] Row(ViewDefinition view, string[]? dimensionValues = null)
        {
            var row = new List<object?> { Bucket };
            row.AddRange(dimensionValues ?? view.Dimensions.Select(_ => Dimension));
            row.Add(Partition);
            row.Add(FirstOffset);
            row.Add(FirstOffset + (ulong)Events.Count - 1);
            foreach (var m in view.Measures)
            {
                switch (m)
                {
                    case CountMeasure:
                        row.Add((ulong)Events.Count);
                        break;
                    case SumMeasure:
                        row.Add(Events.Sum(e => e.Value));
                        break;
                    case MinMeasure:
                        row.Add(Events.Min(e => e.Value));
                        break;
                    case MaxMeasure:
                        row.Add(Events.Max(e => e.Value));
                        break;
                    case DistinctMeasure:
                        row.Add(Users().RegisterValues.ToArray());
                        break;
                    case QuantileMeasure:
                        var buckets = Sketch().Buckets.ToList();
                        row.Add(buckets.Select(b => b.Key).ToArray());
                        row.Add(buckets.Select(b => b.Value).ToArray());
                        break;
                    case TopKMeasure:
                        var counters = TopItems().Counters.ToList();
                        row.Add(counters.Select(c => c.Key).ToArray());
                        row.Add(counters.Select(c => c.Value).ToArray());
                        break;
                }
            }

            return [.. row];
        }
    }
}

[Collection(ChDbGroup.Name)]
public sealed class ChDbViewSqlContractTests(ChDbFixture fixture, ITestOutputHelper output)
    : ViewSqlContractTests(fixture.Backend, output)
{
    private const string Structure =
        "eventId UUID, eventType String, timestamp DateTime64(3), userId String, source String, version String, payload String, kafkaPartition Int32, kafkaOffset Int64";

    private const string Checkout = "user.action.checkout";
    private const string PageView = "user.action.page_view";

    [Fact]
    public async Task BatchSelect_ComputesExactMeasuresOnce_WhenMasterDatasetHasDuplicateEvents()
    {
        // The batch engine is chDB reading Parquet (18.16 has no Parquet), so this part runs on chDB only.
        var folder = Path.Combine(fixture.DataPath, "master-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        (int Id, string Type, string Time, string User, string Source, string Payload)[] events =
        [
            (1, Checkout, "10:00:05.000", "u1", "web", Cart("berlin", 10.5, "EUR", 2)),
            (2, Checkout, "10:00:40.000", "u2", "web", Cart("berlin", 20, "EUR", 1)),
            (3, Checkout, "10:00:59.999", "u1", "app", Cart("berlin", 5.25, "USD", 3)),
            (4, Checkout, "10:01:00.000", "u3", "app", Cart("paris", 100, "EUR", 1)),
            (5, Checkout, "10:01:30.000", "u3", "web", Cart("paris", 50, "EUR", 2)),
            (6, PageView, "10:00:10.000", "u4", "web", """{"url":"/home"}"""),
            (7, PageView, "11:15:00.000", "u1", "app", """{"url":"/cart"}"""),
            (8, Checkout, "11:59:59.000", "u2", "app", Cart("berlin", 7, "GBP", 1)),
        ];

        // Event 4 twice in the first file, event 2 again in the second: the archiver's files may overlap on replay.
        await WriteParquetAsync(Path.Combine(folder, "0-0-5.parquet"), [.. events[..5], events[3]]);
        await WriteParquetAsync(Path.Combine(folder, "0-5-8.parquet"), [.. events[5..], events[1]]);
        var glob = Path.Combine(folder, "*.parquet");

        var checkout = new ViewSql(Shipped.Single(v => v.Name == "checkout_revenue"));
        AssertRows(
            [
                [At("10:00"), "berlin", 3UL, 35.75, 2UL, 20.0], // p99 of [5.25, 10.5, 20]: nearest rank ceil(0.99 * 3) = 3
                [At("10:01"), "paris", 2UL, 150.0, 1UL, 100.0], // p99 of [50, 100]: nearest rank ceil(0.99 * 2) = 2, the larger
                [At("11:59"), "berlin", 1UL, 7.0, 1UL, 7.0],
            ],
            await ReadSelectAsync(checkout.View, checkout.BatchSelect(glob)));

        var activity = new ViewSql(Shipped.Single(v => v.Name == "activity_by_type"));
        AssertRows(
            [
                [At("10:00"), Checkout, "app", 2UL, 2UL],
                [At("10:00"), Checkout, "web", 3UL, 3UL],
                [At("10:00"), PageView, "web", 1UL, 1UL],
                [At("11:00"), Checkout, "app", 1UL, 1UL],
                [At("11:00"), PageView, "app", 1UL, 1UL],
            ],
            await ReadSelectAsync(activity.View, activity.BatchSelect(glob)));

        var all = await CreateViewAsync("all_measures");
        AssertRows(
            [
                [At("10:00"), "berlin", "EUR", 2UL, 30.5, 10.5, 20.0, 2UL, 10.5, Hexes("u1", "u2"), "1,1", Hexes("1", "2"), "1,1"],
                [At("10:00"), "berlin", "USD", 1UL, 5.25, 5.25, 5.25, 1UL, 5.25, Hexes("u1"), "1", Hexes("3"), "1"],
                [At("10:00"), "paris", "EUR", 2UL, 150.0, 50.0, 100.0, 1UL, 50.0, Hexes("u3"), "2", Hexes("1", "2"), "1,1"],
                [At("11:55"), "berlin", "GBP", 1UL, 7.0, 7.0, 7.0, 1UL, 7.0, Hexes("u2"), "1", Hexes("1"), "1"],
            ],
            await ReadSelectAsync(all.View, all.BatchSelect(glob)));

        // Loaded into the batch table, the batch rows answer every bucket below the watermark.
        await ClickHouse.ExecuteAsync($"INSERT INTO {all.BatchTable} {all.BatchSelect(glob)}");
        await ClickHouse.ExecuteAsync($"INSERT INTO {all.WatermarkTableName} VALUES ('all_measures', toDateTime({UnixSeconds(Time("12:00"))}), now())");
        var merged = await ReadMergedAsync(all);
        Assert.Equal(4, merged.Count);
        Assert.All(merged, row => Assert.Equal("batch", row[^1]));
    }

    // Since checkout v2, payload.items is a list of line items, which views cannot read (scalars only); top_items
    // ranks coupon codes instead, here the digits of the v1 item count, so the expected rows stay the same.
    private static string Cart(string store, double value, string currency, int items) =>
        $$"""{"location":"{{store}}","cartValue":{{value.ToString(CultureInfo.InvariantCulture)}},"currency":"{{currency}}","items":{{items}},"coupon":"{{items}}"}""";

    private static DateTime Time(string time) =>
        DateTime.SpecifyKind(DateTime.ParseExact("2024-03-01 " + time, "yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), DateTimeKind.Utc);

    private static long At(string time) => UnixSeconds(Time(time));

    private static string Hexes(params string[] values) => string.Join(',', values.Select(Hex));

    private async Task WriteParquetAsync(string file, (int Id, string Type, string Time, string User, string Source, string Payload)[] events)
    {
        var rows = string.Join(", ", events.Select((e, i) =>
            $"('{new Guid(e.Id, 0, 0, new byte[8])}', {ViewSql.Literal(e.Type)}, '2024-03-01 {e.Time}', {ViewSql.Literal(e.User)}, {ViewSql.Literal(e.Source)}, '1', {ViewSql.Literal(e.Payload)}, 0, {i})"));
        var values = Structure.Replace("DateTime64(3)", "DateTime64(3, 'UTC')", StringComparison.Ordinal);
        await ClickHouse.ExecuteAsync(
            $"INSERT INTO FUNCTION file({ViewSql.Literal(file)}, 'Parquet', {ViewSql.Literal(Structure)}) SELECT * FROM values({ViewSql.Literal(values)}, {rows})");
    }
}

[Collection(ServerGroup.Name)]
public sealed class ServerViewSqlContractTests(ServerFixture fixture, ITestOutputHelper output)
    : ViewSqlContractTests(fixture.Backend, output);
