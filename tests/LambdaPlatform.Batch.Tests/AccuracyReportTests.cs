using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;
using LambdaPlatform.Serving.Store;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Batch.Tests;

/// <summary>
/// The accuracy report a batch run writes before it drops a day's real-time rows, on real chDB: real-time rows made by
/// the measures' own states (HyperLogLog, DDSketch, Space-Saving) from known events, so the real-time distinct, quantile
/// and top-k differ from the exact ones, are checked against a comparison computed here from the events and the
/// real-time answers served before the run; a real-time count planted wrong is a warning naming its bucket.
/// </summary>
[Collection(ArchiveCollection.Name)]
public sealed class AccuracyReportTests : IAsyncLifetime
{
    private static readonly DateTime Day0 = new(2026, 10, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly EventSchemaRegistry Schemas = EventSchemaRegistry.LoadDefault();

    private readonly string _root = Path.Combine(Path.GetTempPath(), "accuracy-" + Guid.NewGuid().ToString("N"));
    private readonly FixedClock _clock = new(Day0.AddDays(5));
    private readonly string _viewName = "accuracy_probe_" + Guid.NewGuid().ToString("N")[..8];
    private ChDbClickHouse _clickHouse = null!;
    private MasterDataset _master = null!;
    private ViewDefinition _view = null!;

    public async Task InitializeAsync()
    {
        _clickHouse = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(_root, "chdb") });
        _master = new MasterDataset(_root, _clock);
        _view = ViewLoader.Parse($"""
            view: {_viewName}
            events: [user.action.checkout]
            bucket: 1h
            dimensions:
              store: payload.location
            measures:
              orders: count
              revenue: sum(payload.cartValue)
              smallest: min(payload.cartValue)
              buyers: distinct(userId)
              p90_cart: quantile(payload.cartValue, 0.9)
              top_buyers: topk(userId, 3)
            """, _viewName + ".yaml", Schemas);
    }

    public async Task DisposeAsync()
    {
        await _clickHouse.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Run_StoresAReportEqualToAnIndependentComparison_WhenTheRealtimeSketchesDifferFromTheExactValues()
    {
        // 9,000 checkouts of 6,000 users over 12 hours and 8 stores: ~94 per bucket, over Space-Saving's 64 counters, and
        // enough distinct users for the HyperLogLog to miss by a few.
        var events = Checkouts(seed: 21, count: 9_000, users: 6_000);
        await WriteRealtimeRowsAsync(events);
        await ArchiveAsync(events);
        var served = await ServedRealtimeAsync();
        var truth = Truth(events);
        Assert.Equal(truth.Keys.Order(), served.Keys.Order());

        using var metrics = new BatchMetrics();
        using var gauges = new GaugeReader(_viewName);
        var logger = new ListLogger();
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, [_view], new BatchOptions { DataRoot = _root }, _clock, logger, metrics);
        var result = Assert.Single(await recompute.RunAsync());
        Assert.Equal(Day0.AddDays(1), result.Watermark);

        var stored = Assert.Single(await new ServingStore(_clickHouse).ReadAccuracyAsync(new ViewSql(_view)));
        Assert.Equal(result.Accuracy, stored, AccuracyComparer.Instance);
        Assert.Equal(DateOnly.FromDateTime(Day0), stored.Day);
        Assert.Equal(_clock.GetUtcNow().UtcDateTime, stored.ComparedAt);
        Assert.Equal(truth.Count, stored.RealtimeRows);
        Assert.Equal(truth.Count, stored.BatchRows);
        Assert.False(stored.HasWarning);
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
        var report = stored.Measures.ToDictionary(m => m.Measure);
        Assert.Equal(["orders", "revenue", "smallest", "buyers", "p90_cart", "top_buyers"], stored.Measures.Select(m => m.Measure));
        Assert.All(stored.Measures, m => Assert.Equal(truth.Count, m.BucketsCompared));

        // Exact kinds: nothing differs (the sum up to rounding).
        foreach (var name in new[] { "orders", "revenue", "smallest" })
        {
            Assert.True(report[name].Exact, name);
            Assert.Equal(0, report[name].BucketsOutOfBound);
            Assert.Empty(report[name].OutOfBoundBuckets);
            Assert.InRange(report[name].MaxRelativeError!.Value, 0, 1e-12);
        }

        // Distinct and quantile: the relative errors computed here from the events and the served real-time values.
        var distinctErrors = truth.Keys.Select(k => Relative(served[k].Buyers, truth[k].Buyers)).ToList();
        var quantileErrors = truth.Keys.Select(k => Relative(served[k].P90, truth[k].P90)).ToList();
        Assert.Contains(distinctErrors, e => e > 0); // the scenario: the real-time distinct differs from the exact one
        AssertApproximate(report["buyers"], distinctErrors, 3 * 0.01625);
        AssertApproximate(report["p90_cart"], quantileErrors, 0.01);

        // Top-k: items of the exact top 3 missing from the real-time top 3, and count differences of the others.
        var misses = 0L;
        var difference = 0UL;
        foreach (var k in truth.Keys)
        {
            var realtime = served[k].Top.ToDictionary(p => p.Item, p => p.Count, StringComparer.Ordinal);
            foreach (var (item, count) in truth[k].Top)
            {
                if (realtime.TryGetValue(item, out var other))
                {
                    difference += (ulong)Math.Abs((long)other - (long)count);
                }
                else
                {
                    misses++;
                }
            }
        }

        Assert.True(misses > 0, "Space-Saving over capacity should miss some of the exact top 3");
        Assert.Equal(misses, report["top_buyers"].TopKMisses);
        Assert.Equal(difference, report["top_buyers"].TopKCountDifference);
        Assert.Null(report["top_buyers"].MaxRelativeError);
        Assert.Equal(0, report["top_buyers"].BucketsOutOfBound);

        // The gauges carry the same report.
        gauges.Collect();
        Assert.Equal(truth.Count, gauges.Value("lambda.accuracy.buckets_compared", "buyers"));
        Assert.Equal(report["buyers"].MaxRelativeError!.Value, gauges.Value("lambda.accuracy.relative_error.max", "buyers"), 12);
        Assert.Equal(report["buyers"].BucketsOutOfBound, gauges.Value("lambda.accuracy.buckets_out_of_bound", "buyers"));
        Assert.Equal(misses, gauges.Value("lambda.accuracy.topk_misses", "top_buyers"));
        Assert.Equal(0.01, gauges.Value("lambda.accuracy.relative_error.bound", "p90_cart"), 12);

        // The real-time rows were dropped after the report, as before.
        Assert.Empty(await QueryAsync($"SELECT 1 FROM {_viewName}_rt LIMIT 1"));
    }

    [Fact]
    public async Task Run_WarnsNamingTheBuckets_WhenARealtimeCountDiffered()
    {
        var events = Checkouts(seed: 22, count: 2_000, users: 300);
        var keys = events.GroupBy(Key).Select(g => g.Key).Order(StringComparer.Ordinal).ToList();
        var doubled = keys[3];
        var lost = keys[7];
        var inflated = keys[5];

        // One bucket counted an event twice (count state only); one bucket's events never reached the real-time side;
        // one row exists only in real time (a store the batch never saw); and one bucket's distinct saw 40 users too many,
        // beyond the HyperLogLog's bound but not a warning: distinct is approximate.
        await WriteRealtimeRowsAsync(events, tamper: (key, states) =>
        {
            if (key == doubled)
            {
                states[0].Add(FieldValue.Missing);
            }

            for (var i = 0; key == inflated && i < 40; i++)
            {
                states[3].Add(FieldValue.OfText("ghost-user-" + i.ToString(CultureInfo.InvariantCulture)));
            }

            return key != lost;
        });
        var ghost = Day0.AddHours(9);
        await WriteRealtimeRowsAsync([Checkouts(seed: 23, count: 1, users: 10)[0]], store: "ghost", firstOffset: 0);
        await ArchiveAsync(events);

        var logger = new ListLogger();
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, [_view], new BatchOptions { DataRoot = _root }, _clock, logger);
        var result = Assert.Single(await recompute.RunAsync());

        var report = result.Accuracy!;
        Assert.True(report.HasWarning);
        var orders = report.Measures.Single(m => m.Measure == "orders");
        Assert.Equal(keys.Count + 1, orders.BucketsCompared);
        Assert.Equal(3, orders.BucketsOutOfBound);
        var expected = new[] { Label(doubled), Label(lost), $"{ghost:yyyy-MM-dd HH:mm:ss} store=ghost" }.Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, orders.OutOfBoundBuckets.Order(StringComparer.Ordinal));

        // The sum saw the lost bucket and the ghost row, not the doubled count (its state was not touched).
        Assert.Equal(2, report.Measures.Single(m => m.Measure == "revenue").BucketsOutOfBound);

        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("orders", StringComparison.Ordinal));
        Assert.Contains("3 of " + (keys.Count + 1).ToString(CultureInfo.InvariantCulture) + " buckets", warning.Message, StringComparison.Ordinal);
        Assert.All(expected, label => Assert.Contains(label, warning.Message, StringComparison.Ordinal));
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("revenue", StringComparison.Ordinal));

        var buyers = report.Measures.Single(m => m.Measure == "buyers");
        Assert.Contains(Label(inflated), buyers.OutOfBoundBuckets);
        Assert.DoesNotContain(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("buyers", StringComparison.Ordinal));

        var stored = Assert.Single(await new ServingStore(_clickHouse).ReadAccuracyAsync(new ViewSql(_view)));
        Assert.Equal(report, stored, AccuracyComparer.Instance);
    }

    [Fact]
    public async Task Run_WritesNoReport_ForADayTheRealtimeSideNeverSaw()
    {
        await ArchiveAsync(Checkouts(seed: 24, count: 200, users: 50));
        using var recompute = new BatchRecompute(_clickHouse, _clickHouse, [_view], new BatchOptions { DataRoot = _root }, _clock);
        var result = Assert.Single(await recompute.RunAsync());
        Assert.Equal(Day0.AddDays(1), result.Watermark);
        Assert.Null(result.Accuracy);
        Assert.Empty(await new ServingStore(_clickHouse).ReadAccuracyAsync(new ViewSql(_view)));
    }

    private static void AssertApproximate(MeasureAccuracy measure, List<double> errors, double bound)
    {
        Assert.False(measure.Exact);
        Assert.Equal(bound, measure.Bound, 12);
        Assert.Equal(errors.Max(), measure.MaxRelativeError!.Value, 12);
        Assert.Equal(errors.Average(), measure.MeanRelativeError!.Value, 12);
        Assert.Equal(errors.Count(e => e > bound * (1 + 1e-9)), measure.BucketsOutOfBound);
    }

    private static double Relative(double realtime, double exact) => realtime == exact ? 0 : exact == 0 ? 1 : Math.Abs(realtime - exact) / Math.Abs(exact);

    /// <summary>The exact answer per (bucket, store), computed here from the events.</summary>
    private static Dictionary<string, Values> Truth(List<GeneratedEvent> events) =>
        events.GroupBy(Key).ToDictionary(g => g.Key, g =>
        {
            var values = g.Select(e => Payload(e).GetProperty("cartValue").GetDouble()).Order().ToList();
            var top = g.GroupBy(e => e.UserId).Select(u => (Item: u.Key, Count: (ulong)u.Count()))
                .OrderByDescending(p => p.Count).ThenBy(p => p.Item, StringComparer.Ordinal).Take(3).ToList();
            return new Values(g.Count(), g.Select(e => e.UserId).Distinct().Count(), values[(int)Math.Ceiling(0.9 * values.Count - 1e-9) - 1], top);
        }, StringComparer.Ordinal);

    /// <summary>What the merged view serves from the real-time side (before the batch run: every row is real time).</summary>
    private async Task<Dictionary<string, Values>> ServedRealtimeAsync()
    {
        var served = new Dictionary<string, Values>(StringComparer.Ordinal);
        await using var stream = await _clickHouse.QueryAsync(
            $"SELECT toUnixTimestamp(bucket) AS t, store, toFloat64(orders) AS n, toFloat64(buyers) AS d, p90_cart AS q, top_buyers_items AS items, arrayMap(x -> toFloat64(x), top_buyers_counts) AS counts, side FROM {_viewName}",
            "JSONEachRow");
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync() is { Length: > 0 } line)
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            Assert.Equal("realtime", r.GetProperty("side").GetString());
            var items = r.GetProperty("items").EnumerateArray().Select(i => i.GetString()!).ToList();
            var counts = r.GetProperty("counts").EnumerateArray().Select(c => (ulong)c.GetDouble()).ToList();
            var key = $"{DateTime.UnixEpoch.AddSeconds(r.GetProperty("t").GetInt64()):yyyy-MM-dd HH:mm:ss}\t{r.GetProperty("store").GetString()}";
            served[key] = new Values((long)r.GetProperty("n").GetDouble(), (long)r.GetProperty("d").GetDouble(), r.GetProperty("q").GetDouble(),
                [.. items.Zip(counts)]);
        }

        return served;
    }

    private static string Key(GeneratedEvent e) =>
        $"{new DateTime(e.Timestamp.Ticks - (e.Timestamp.Ticks % TimeSpan.TicksPerHour), DateTimeKind.Utc):yyyy-MM-dd HH:mm:ss}\t{Payload(e).GetProperty("location").GetString()}";

    private static string Label(string key) => key.Replace("\t", " store=", StringComparison.Ordinal);

    private static List<GeneratedEvent> Checkouts(int seed, int count, int users)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed, Users = users });
        return [.. Enumerable.Range(0, count).Select(i => generator.Next("user.action.checkout", Day0.AddHours(9).AddSeconds(i * (43_200.0 / count))))];
    }

    /// <summary>
    /// Real-time delta rows of <paramref name="events"/> as one speed-layer flush of Kafka partition 0 writes them, at
    /// offsets from <paramref name="firstOffset"/> (those <see cref="ArchiveAsync"/> gives the same events): each measure's
    /// state made and fed by its own type. <paramref name="tamper"/> may change a group's states after they are fed, or
    /// drop the group (return false); <paramref name="store"/> replaces the store of every event.
    /// </summary>
    private async Task WriteRealtimeRowsAsync(List<GeneratedEvent> events, Func<string, List<MeasureState>, bool>? tamper = null,
        string? store = null, long firstOffset = 0)
    {
        var sql = new ViewSql(_view);
        foreach (var statement in sql.CreateServingObjects)
        {
            await _clickHouse.ExecuteAsync(statement);
        }

        var last = firstOffset + events.Count - 1;
        var rows = new List<object?[]>();
        foreach (var group in events.Select((e, i) => (Event: e, Offset: firstOffset + i)).GroupBy(x => Key(x.Event)))
        {
            var states = _view.Measures.Select(m => m.NewState()).ToList();
            foreach (var (e, _) in group)
            {
                for (var m = 0; m < states.Count; m++)
                {
                    var path = _view.Measures[m].Path;
                    states[m].Add(path is null ? FieldValue.Missing
                        : path.Root == FieldRoot.UserId ? FieldValue.OfText(e.UserId)
                        : FieldValue.Of(Payload(e).GetProperty(path.PayloadPath[0]).GetDouble()));
                }
            }

            if (tamper is not null && !tamper(group.Key, states))
            {
                continue;
            }

            var parts = group.Key.Split('\t');
            var bucket = DateTime.SpecifyKind(DateTime.ParseExact(parts[0], "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), DateTimeKind.Utc);
            var row = new List<object?> { bucket, store ?? parts[1], (ushort)0, (ulong)group.Min(x => x.Offset), (ulong)last };
            states.ForEach(s => s.WriteTo(row));
            rows.Add([.. row]);
        }

        await _clickHouse.InsertAsync(sql.RealtimeTable, [.. sql.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type))], rows);
    }

    /// <summary>Publishes the events as master-dataset files of Kafka partition 0 from offset 0, and records the partition archived through them.</summary>
    private async Task ArchiveAsync(List<GeneratedEvent> events)
    {
        var decoder = new EventDecoder(Schemas, new EventDecoderOptions { Clock = _clock });
        long offset = 0;
        foreach (var hour in events.GroupBy(e => HourKey.Of(e.Timestamp)))
        {
            var buffer = new MasterEventBuffer();
            var first = offset;
            foreach (var e in hour)
            {
                Assert.True(decoder.TryDecode(e.Json, out var decoded, out _));
                buffer.Add(decoded!, 0, offset++);
            }

            Directory.CreateDirectory(_master.HourPath(hour.Key));
            await MasterParquet.WriteFileAsync(buffer, _master.FilePath(hour.Key, 0, new OffsetRange(first, offset - 1)));
        }

        await _master.MarkChangedAsync(events.Select(e => DateOnly.FromDateTime(e.Timestamp)).Distinct());
        await _master.RecordArchivedAsync(0, offset - 1);
    }

    private async Task<List<string[]>> QueryAsync(string sql)
    {
        await using var stream = await _clickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return [.. (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))];
    }

    private static JsonElement Payload(GeneratedEvent e) => JsonDocument.Parse(e.Json).RootElement.GetProperty("payload");

    private sealed record Values(long Orders, long Buyers, double P90, List<(string Item, ulong Count)> Top);

    /// <summary>Reports are equal when every field and every measure is (records compare lists by reference).</summary>
    private sealed class AccuracyComparer : IEqualityComparer<AccuracyReport?>
    {
        public static readonly AccuracyComparer Instance = new();

        public bool Equals(AccuracyReport? x, AccuracyReport? y) =>
            x is not null && y is not null && Text(x) == Text(y);

        public int GetHashCode(AccuracyReport? obj) => obj is null ? 0 : Text(obj).GetHashCode(StringComparison.Ordinal);

        private static string Text(AccuracyReport r) =>
            $"{r.View} {r.Day} {r.ComparedAt:O} {r.RealtimeRows} {r.BatchRows}\n" + string.Join("\n", r.Measures.Select(m =>
                FormattableString.Invariant($"{m.Measure} {m.Kind} {m.Definition} {m.Exact} {m.Bound:R} {m.BucketsCompared} {m.BucketsOutOfBound} {m.MaxRelativeError:R} {m.MeanRelativeError:R} {m.TopKMisses} {m.TopKCountDifference} [{string.Join('|', m.OutOfBoundBuckets)}]")));
    }

    /// <summary>Reads the accuracy gauges of one view from every <see cref="BatchMetrics"/> meter.</summary>
    private sealed class GaugeReader : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<(string Instrument, string Measure), double> _values = [];

        public GaugeReader(string view)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == BatchMetrics.MeterName && instrument.Name.StartsWith("lambda.accuracy.", StringComparison.Ordinal))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Store(view, i, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Store(view, i, v, tags));
            _listener.Start();
        }

        public void Collect() => _listener.RecordObservableInstruments();

        public double Value(string instrument, string measure) =>
            _values.TryGetValue((instrument, measure), out var v) ? v : throw new Xunit.Sdk.XunitException($"no {instrument} for {measure}");

        public void Dispose() => _listener.Dispose();

        private void Store(string view, Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? v = null, m = null;
            foreach (var tag in tags)
            {
                v = tag.Key == "view" ? tag.Value as string : v;
                m = tag.Key == "measure" ? tag.Value as string : m;
            }

            if (v == view && m is not null)
            {
                _values[(instrument.Name, m)] = value;
            }
        }
    }

    private sealed class ListLogger : ILogger<BatchRecompute>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
