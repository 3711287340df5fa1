using System.Globalization;
using System.Text;
using System.Text.Json;
using CsCheck;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;
using LambdaPlatform.Speed.Views;
using Xunit.Abstractions;

namespace LambdaPlatform.Speed.Tests;

/// <summary>
/// "Cannot drift", as a property: generated views (every measure kind, dimensions, filters, <c>events: all</c>) over
/// generated events whose fields are present, missing, null, of other types, or numbers written like text (<c>2.0</c>),
/// sent out of order, duplicated and flushed in random batches. The same events go (1) through the speed aggregation,
/// its delta rows merged by ClickHouse (chDB), and (2) through the batch SQL on chDB over the master dataset's
/// Parquet, written by the archiver's writer; (3) an answer computed here from the generator's own description of
/// each value. Batch must equal (3); real time must equal batch for exact measures, be within the stated bound for
/// distinct and quantile, and equal it for top-k (the items always fit the summary's capacity here).
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class MeasureDriftPropertyTests(PipelineFixture fixture, ITestOutputHelper output)
{
    private static readonly DateTime Start = new(2026, 3, 1, 10, 0, 0, DateTimeKind.Utc);
    private static readonly Lazy<EventSchemaRegistry> TestSchemas = new(WriteTestSchemas);

    /// <summary>Which test event types declare each payload field (and so where a view may read it).</summary>
    private static readonly Dictionary<string, string[]> DeclaredIn = new(StringComparer.Ordinal)
    {
        ["payload.n"] = ["test.alpha", "test.beta"],
        ["payload.s"] = ["test.alpha", "test.beta", "test.gamma"],
        ["payload.x"] = ["test.alpha", "test.gamma"],
        ["payload.k"] = ["test.gamma"],
        ["payload.nested.v"] = ["test.alpha"],
    };

    /// <summary>Which test event types let each payload field hold a number (sum, min, max and quantile need one of them).</summary>
    private static readonly Dictionary<string, string[]> NumberIn = new(StringComparer.Ordinal)
    {
        ["payload.n"] = ["test.alpha", "test.beta"],
        ["payload.x"] = ["test.alpha"],
        ["payload.k"] = ["test.gamma"],
        ["payload.nested.v"] = ["test.alpha"],
    };

    private static readonly string[] AllTypes = ["test.alpha", "test.beta", "test.gamma"];

    /// <summary>Numbers as JSON writes them, with the text every side must read (written independently of the code under test).</summary>
    private static readonly (string Json, double Value, string Text)[] Numbers =
    [
        ("2", 2, "2"), ("2.0", 2, "2"), ("2.5", 2.5, "2.5"), ("0.1", 0.1, "0.1"), ("-3", -3, "-3"), ("12", 12, "12"), ("100", 100, "100"),
        ("1e21", 1e21, "1e21"), ("0.0000001", 1e-7, "1e-7"), ("1000000", 1e6, "1000000"), ("-0.5", -0.5, "-0.5"), ("0", 0, "0"), ("149.99", 149.99, "149.99"),
    ];

    private static readonly string[] Texts = ["a", "b", "c", "12", "2", "true", "x y", "ü", "", "2.0"];

    [Fact]
    public async Task SpeedAndBatch_AgreeWithEachOtherAndWithTheTruth_ForGeneratedViewsAndEvents()
    {
        await Scenarios.SampleAsync(CheckAsync, iter: 40, threads: 1, seed: Environment.GetEnvironmentVariable("LAMBDA_DRIFT_SEED"),
            writeLine: output.WriteLine, print: s => s.Describe());
    }

    private static Gen<Scenario> Scenarios =>
        from view in ViewSpecs
        from events in EventSpecs.List[1, 120]
        from duplicates in Gen.Int[0, 3].List[0, 20]
        from flush in Gen.Int[1, 40].List[1, 30]
        from seed in Gen.Int
        select new Scenario(view, events, duplicates, flush, seed);

    private static Gen<ViewSpec> ViewSpecs =>
        from types in Gen.OneOf<string[]?>(null, ["test.alpha"], ["test.alpha", "test.gamma"], ["test.beta"], ["test.gamma"])
        from bucket in Gen.OneOf("1m", "1h")
        from dims in Gen.OneOf("eventType", "metadata.source", "payload.s", "payload.x", "payload.n", "userId").List[0, 2]
        from filter in Gen.OneOf<string?>(null, "payload.s: [a, b, \"12\"]", "eventType: [test.alpha, test.gamma]", "payload.x: [\"12\", \"true\", \"2\"]", "payload.n: [\"2\", \"12\"]")
        from measures in Gen.OneOf(
            "sum(payload.n)", "min(payload.n)", "max(payload.nested.v)", "max(payload.k)", "sum(payload.x)", "min(payload.x)",
            "quantile(payload.n, 0.5)", "quantile(payload.x, 0.99)", "quantile(payload.n, 0.9)",
            "distinct(payload.s)", "distinct(payload.x)", "distinct(payload.n)", "distinct(userId)",
            "topk(payload.s, 3)", "topk(payload.x, 2)", "topk(payload.n, 5)").List[1, 5]
        select new ViewSpec(types, bucket, [.. dims.Distinct()], filter, [.. measures.Distinct()]);

    private static Gen<Value> Values(bool numbers, bool texts, bool booleans, bool integersOnly = false) =>
        Gen.Frequency(
            (3, Gen.Const(Value.Absent)),
            (2, Gen.Const(Value.Null)),
            (numbers ? 4 : 0, Gen.Int[0, Numbers.Length - 1].Where(i => !integersOnly || Numbers[i].Value == Math.Floor(Numbers[i].Value) && !Numbers[i].Json.Contains('.') && !Numbers[i].Json.Contains('e'))
                .Select(i => new Value(ValueKind.Number, Numbers[i].Json, Numbers[i].Value, Numbers[i].Text))),
            (numbers ? 2 : 0, Gen.Int[0, 40].Select(i => new Value(ValueKind.Number, i.ToString(CultureInfo.InvariantCulture), i, i.ToString(CultureInfo.InvariantCulture)))),
            (texts ? 4 : 0, Gen.OneOf(Texts).Select(t => new Value(ValueKind.Text, JsonSerializer.Serialize(t), 0, t))),
            (booleans ? 1 : 0, Gen.Bool.Select(b => new Value(ValueKind.Boolean, b ? "true" : "false", 0, b ? "true" : "false"))));

    private static Gen<EventSpec> EventSpecs =>
        from type in Gen.OneOf(AllTypes)
        from user in Gen.Int[1, 12]
        from source in Gen.OneOf("web", "ios", "android")
        from millis in Gen.Int[0, (3 * 3600 * 1000) - 1]
        from n in Values(numbers: true, texts: false, booleans: false, integersOnly: type == "test.beta")
        from s in Values(numbers: false, texts: true, booleans: false)
        from x in type == "test.alpha" ? Values(numbers: true, texts: true, booleans: true) : Values(numbers: false, texts: true, booleans: false)
        from k in Values(numbers: true, texts: false, booleans: false)
        from v in Values(numbers: true, texts: false, booleans: false)
        from nested in Gen.Int[0, 2]
        from partition in Gen.Int[0, 2]
        select new EventSpec(type, "u" + user.ToString(CultureInfo.InvariantCulture), source, Start.AddMilliseconds(millis), partition,
            type switch
            {
                "test.alpha" => [("n", n), ("s", s), ("x", x), ("nested", nested == 0 ? Value.Absent : nested == 1 ? Value.Null : new Value(ValueKind.Object, string.Empty, 0, string.Empty, [("v", v)]))],
                "test.beta" => [("n", n), ("s", s)],
                _ => [("s", s), ("x", x), ("k", k)],
            });

    private async Task CheckAsync(Scenario scenario)
    {
        var view = ViewLoader.Parse(scenario.View.Yaml, "drift.yaml", TestSchemas.Value);
        var database = "drift_" + Guid.NewGuid().ToString("N")[..12];
        await fixture.ClickHouse.ExecuteAsync($"CREATE DATABASE {database}");
        try
        {
            var sql = new ViewSql(view, database);
            var arrivals = Arrivals(scenario);

            // (1) Real time: random flushes, then the merge in ClickHouse.
            foreach (var statement in sql.CreateServingObjects)
            {
                await fixture.ClickHouse.ExecuteAsync(statement);
            }

            var aggregation = new RealtimeAggregation([view], TestSchemas.Value);
            var columns = sql.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type)).ToArray();
            var position = 0;
            foreach (var size in scenario.FlushSizes.Concat(Enumerable.Repeat(40, arrivals.Count)))
            {
                if (position >= arrivals.Count)
                {
                    break;
                }

                var chunk = arrivals.Skip(position).Take(size).ToList();
                position += chunk.Count;
                var result = aggregation.Aggregate(chunk);
                Assert.Equal(0, result.Late[0]);
                if (result.Rows[0].Count > 0)
                {
                    await fixture.ClickHouse.InsertAsync(sql.RealtimeTable, columns, result.Rows[0]);
                }

                aggregation.Commit(result);
            }

            var realtime = await RowsAsync(sql.RealtimeMergedSelect(), view);

            // (2) Batch: the master dataset's Parquet (duplicates included), the batch SQL.
            var buffer = new MasterEventBuffer();
            foreach (var a in arrivals)
            {
                buffer.Add(a.Event, a.Partition, a.Offset);
            }

            var file = Path.Combine(Path.GetTempPath(), database + ".parquet");
            await MasterParquet.WriteFileAsync(buffer, file);
            Dictionary<string, string[]> batch;
            try
            {
                batch = await RowsAsync(sql.BatchSelect(file), view);
            }
            finally
            {
                File.Delete(file);
            }

            // (3) The truth, from the generator's description of every value.
            var truth = Truth(scenario, view);

            Assert.Equal(truth.Keys.Order(StringComparer.Ordinal), batch.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(batch.Keys.Order(StringComparer.Ordinal), realtime.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, expected) in truth)
            {
                var b = batch[key];
                var r = realtime[key];
                var column = 1 + view.Dimensions.Count;
                foreach (var m in view.Measures)
                {
                    var width = m.ServedColumns.Count;
                    var t = expected[m.Name];
                    var batchFields = b[column..(column + width)];
                    var realtimeFields = r[column..(column + width)];
                    AssertBatchEqualsTruth(m, t, batchFields, key);
                    AssertRealtimeMatchesBatch(m, batchFields, realtimeFields, key);
                    column += width;
                }
            }
        }
        finally
        {
            await fixture.ClickHouse.ExecuteAsync($"DROP DATABASE IF EXISTS {database}");
        }
    }

    private static void AssertBatchEqualsTruth(Measure m, Expected t, string[] fields, string key)
    {
        var where = $"{m.Definition} at {key}";
        switch (m)
        {
            case CountMeasure or DistinctMeasure:
                Assert.True(t.Number.ToString(CultureInfo.InvariantCulture) == fields[0], $"{where}: batch {fields[0]}, truth {t.Number}");
                break;
            case SumMeasure:
                AssertClose(t.Nullable, ClickHouseText.Number(fields[0]), 1e-9, where + " (batch vs truth)");
                break;
            case MinMeasure or MaxMeasure or QuantileMeasure:
                Assert.True(Equals(t.Nullable, ClickHouseText.Number(fields[0])), $"{where}: batch {fields[0]}, truth {t.Nullable}");
                break;
            case TopKMeasure:
                Assert.True(string.Join('|', t.Top.Select(x => x.Item)) == string.Join('|', ClickHouseText.Array(fields[0])), $"{where}: batch items {fields[0]}, truth {string.Join('|', t.Top.Select(x => x.Item))}");
                Assert.True(string.Join('|', t.Top.Select(x => x.Count)) == string.Join('|', ClickHouseText.Array(fields[1])), $"{where}: batch counts {fields[1]}");
                break;
            default:
                Assert.Fail($"no truth for measure kind {m.Kind}");
                break;
        }
    }

    private static void AssertRealtimeMatchesBatch(Measure m, string[] batch, string[] realtime, string key)
    {
        var where = $"{m.Definition} at {key}: batch [{string.Join(", ", batch)}], real time [{string.Join(", ", realtime)}]";
        switch (m)
        {
            case CountMeasure or MinMeasure or MaxMeasure or TopKMeasure:
                Assert.True(batch.SequenceEqual(realtime), where);
                break;
            case SumMeasure:
                AssertClose(ClickHouseText.Number(batch[0]), ClickHouseText.Number(realtime[0]), 1e-9, where);
                break;
            case DistinctMeasure:
                var exact = double.Parse(batch[0], CultureInfo.InvariantCulture);
                Assert.True(Math.Abs(double.Parse(realtime[0], CultureInfo.InvariantCulture) - exact) <= Math.Max(DistinctMeasure.SmallCountSlack, m.RealtimeRelativeError * exact), where);
                break;
            case QuantileMeasure:
                AssertClose(ClickHouseText.Number(batch[0]), ClickHouseText.Number(realtime[0]), m.RealtimeRelativeError, where);
                break;
            default:
                Assert.Fail($"no comparison for measure kind {m.Kind}");
                break;
        }
    }

    private static void AssertClose(double? expected, double? actual, double relative, string where)
    {
        Assert.True(expected.HasValue == actual.HasValue, where + $": {expected} vs {actual}");
        if (expected is { } e && actual is { } a)
        {
            Assert.True(Math.Abs(a - e) <= (relative * Math.Abs(e)) + 1e-12, where + $": {e} vs {a}");
        }
    }

    private static List<ConsumedEvent> Arrivals(Scenario scenario)
    {
        var decoder = new EventDecoder(TestSchemas.Value, new EventDecoderOptions { Clock = new FixedClock(Start.AddDays(1)) });
        var random = new Random(scenario.Seed);
        var sent = new List<(EventSpec Spec, Guid Id)>();
        for (var i = 0; i < scenario.Events.Count; i++)
        {
            var id = new Guid(i + 1, 0, 0, [.. BitConverter.GetBytes((long)scenario.Seed)]);
            sent.Add((scenario.Events[i], id));
            if (i < scenario.Duplicates.Count)
            {
                for (var d = 0; d < scenario.Duplicates[i]; d++)
                {
                    sent.Add((scenario.Events[i] with { Partition = random.Next(3) }, id)); // a producer retry, maybe to another partition
                }
            }
        }

        var offsets = new long[3];
        var arrivals = new List<ConsumedEvent>();
        foreach (var (spec, id) in sent.OrderBy(_ => random.Next()))
        {
            var json = Encoding.UTF8.GetBytes(spec.Json(id));
            Assert.True(decoder.TryDecode(json, out var decoded, out var violation), $"generated event is invalid: {violation?.Message}: {spec.Json(id)}");
            arrivals.Add(new ConsumedEvent(decoded!, spec.Partition, offsets[spec.Partition]++));
        }

        return arrivals;
    }

    /// <summary>The exact answer, per row key (bucket and dimension texts), per measure: computed from the generator's description only.</summary>
    private static Dictionary<string, Dictionary<string, Expected>> Truth(Scenario scenario, ViewDefinition view)
    {
        var spec = scenario.View;
        var bucketTicks = spec.Bucket == "1m" ? TimeSpan.TicksPerMinute : TimeSpan.TicksPerHour;
        var events = scenario.Events.Where(e => spec.Types is null || spec.Types.Contains(e.Type)).Where(e => spec.Passes(e)).ToList();
        var result = new Dictionary<string, Dictionary<string, Expected>>(StringComparer.Ordinal);
        foreach (var group in events.GroupBy(e => Key(new DateTime(e.Time.Ticks - (e.Time.Ticks % bucketTicks), DateTimeKind.Utc), spec.DimensionPaths.Select(d => e.Read(d)?.Text ?? string.Empty)), StringComparer.Ordinal))
        {
            var measures = new Dictionary<string, Expected>(StringComparer.Ordinal);
            foreach (var (name, definition) in view.Measures.Select(m => (m.Name, spec.MeasureDefinitions[int.Parse(m.Name[1..], CultureInfo.InvariantCulture)])))
            {
                var function = definition[..definition.IndexOf('(', StringComparison.Ordinal)];
                var path = definition[(definition.IndexOf('(', StringComparison.Ordinal) + 1)..].TrimEnd(')').Split(',')[0].Trim();
                var values = path.Length == 0 ? [] : group.Select(e => e.Read(path)).Where(v => v is not null).Select(v => v!).ToList();
                var numbers = values.Where(v => v.Kind == ValueKind.Number).Select(v => v.Number).ToList();
                measures[name] = function switch
                {
                    "count" => new Expected(group.Count(), null, []),
                    "sum" => new Expected(0, numbers.Count == 0 ? null : numbers.Sum(), []),
                    "min" => new Expected(0, numbers.Count == 0 ? null : numbers.Min(), []),
                    "max" => new Expected(0, numbers.Count == 0 ? null : numbers.Max(), []),
                    "distinct" => new Expected(values.Select(v => v.Text).Distinct(StringComparer.Ordinal).Count(), null, []),
                    "quantile" => new Expected(0, numbers.Count == 0 ? null : numbers.Order().ElementAt((int)Math.Ceiling(decimal.Parse(definition.Split(',')[1].TrimEnd(')'), CultureInfo.InvariantCulture) * numbers.Count) - 1), []),
                    _ => new Expected(0, null, [.. values.GroupBy(v => v.Text, StringComparer.Ordinal).Select(g => (Item: g.Key, Count: g.Count()))
                        .OrderByDescending(x => x.Count).ThenBy(x => x.Item, StringComparer.Ordinal).Take(int.Parse(definition.Split(',')[1].TrimEnd(')'), CultureInfo.InvariantCulture))]),
                };
            }

            result[group.Key] = measures;
        }

        return result;
    }

    private static string Key(DateTime bucket, IEnumerable<string> dims) =>
        string.Join('\t', dims.Prepend(((long)(bucket - DateTime.UnixEpoch).TotalSeconds).ToString(CultureInfo.InvariantCulture)));

    private async Task<Dictionary<string, string[]>> RowsAsync(string select, ViewDefinition view)
    {
        var dims = string.Concat(view.Dimensions.Select(d => ", " + ViewSql.Quote(d.Name)));
        var measures = string.Concat(view.Measures.SelectMany(m => m.ServedColumns).Select(c => ", " + ViewSql.Quote(c.Name)));
        await using var stream = await fixture.ClickHouse.QueryAsync($"SELECT toUnixTimestamp(bucket){dims}{measures} FROM ({select})", "TabSeparated");
        using var reader = new StreamReader(stream);
        var rows = new Dictionary<string, string[]>(StringComparer.Ordinal);
        while (await reader.ReadLineAsync() is { } line)
        {
            var fields = line.Split('\t');
            rows.Add(string.Join('\t', fields.Take(1 + view.Dimensions.Count).Select(ClickHouseText.Unescape)), fields);
        }

        return rows;
    }

    private static EventSchemaRegistry WriteTestSchemas()
    {
        var folder = Path.Combine(Path.GetTempPath(), "drift-schemas-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(EventSchemaRegistry.DefaultDirectory(), "envelope.schema.json"), Path.Combine(folder, "envelope.schema.json"));
        void Type(string name, string properties)
        {
            Directory.CreateDirectory(Path.Combine(folder, name));
            File.WriteAllText(Path.Combine(folder, name, "v1.schema.json"), "{\"type\": \"object\", \"additionalProperties\": false, \"properties\": {" + properties + "}}");
        }

        Type("test.alpha", """
            "n": {"type": ["number", "null"]}, "s": {"type": ["string", "null"]}, "x": {"type": ["number", "string", "boolean", "null"]},
            "nested": {"type": ["object", "null"], "additionalProperties": false, "properties": {"v": {"type": ["number", "null"]}}}
            """);
        Type("test.beta", """ "n": {"type": ["integer", "null"]}, "s": {"type": ["string", "null"]} """);
        Type("test.gamma", """ "s": {"type": ["string", "null"]}, "x": {"type": ["string", "null"]}, "k": {"type": ["number", "null"]} """);
        return EventSchemaRegistry.Load(folder);
    }

    private enum ValueKind
    {
        Absent,
        Null,
        Number,
        Text,
        Boolean,
        Object,
    }

    /// <summary>One generated field value: its JSON, and the number or text every side must read from it (null: skipped).</summary>
    private sealed record Value(ValueKind Kind, string Json, double Number, string Text, IReadOnlyList<(string Name, Value Value)>? Fields = null)
    {
        public static readonly Value Absent = new(ValueKind.Absent, string.Empty, 0, string.Empty);

        public static readonly Value Null = new(ValueKind.Null, "null", 0, string.Empty);

        public override string ToString() => Kind is ValueKind.Absent ? "-" : Kind == ValueKind.Object ? "{" + string.Join(",", Fields!.Select(f => f.Name + ":" + f.Value)) + "}" : Json;
    }

    private sealed record EventSpec(string Type, string User, string Source, DateTime Time, int Partition, IReadOnlyList<(string Name, Value Value)> Payload)
    {
        public string Json(Guid id)
        {
            static string Object(IReadOnlyList<(string Name, Value Value)> fields) =>
                "{" + string.Join(",", fields.Where(f => f.Value.Kind != ValueKind.Absent)
                    .Select(f => $"\"{f.Name}\":{(f.Value.Kind == ValueKind.Object ? Object(f.Value.Fields!) : f.Value.Json)}")) + "}";
            var time = Time.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
            return $$"""{"eventId":"{{id}}","eventType":"{{Type}}","timestamp":"{{time}}","userId":"{{User}}","payload":{{Object(Payload)}},"metadata":{"source":"{{Source}}","version":"1"}""" + "}";
        }

        /// <summary>The value a view reads at <paramref name="path"/>, or null when it skips it (missing, null, an object).</summary>
        public Value? Read(string path)
        {
            switch (path)
            {
                case "eventType": return new Value(ValueKind.Text, string.Empty, 0, Type);
                case "userId": return new Value(ValueKind.Text, string.Empty, 0, User);
                case "metadata.source": return new Value(ValueKind.Text, string.Empty, 0, Source);
            }

            IReadOnlyList<(string Name, Value Value)>? fields = Payload;
            Value? value = null;
            foreach (var segment in path["payload.".Length..].Split('.'))
            {
                value = fields?.FirstOrDefault(f => f.Name == segment).Value;
                fields = value?.Fields;
            }

            return value is { Kind: ValueKind.Number or ValueKind.Text or ValueKind.Boolean } ? value : null;
        }

        public override string ToString() => $"{Type} {User} {Source} {Time:HH:mm:ss.fff} p{Partition} {{{string.Join(", ", Payload.Select(p => p.Name + "=" + p.Value))}}}";
    }

    private sealed record ViewSpec(string[]? Types, string Bucket, IReadOnlyList<string> Dimensions, string? Filter, IReadOnlyList<string> Measures)
    {
        public string Yaml
        {
            get
            {
                // Dimensions and measures a view may name: declared by at least one of its event types.
                var types = Types ?? AllTypes;
                bool Declared(string path) => !path.StartsWith("payload.", StringComparison.Ordinal) || DeclaredIn[path].Intersect(types).Any();
                var yaml = new StringBuilder()
                    .AppendLine("view: drift")
                    .AppendLine(CultureInfo.InvariantCulture, $"events: {(Types is null ? "all" : "[" + string.Join(", ", Types) + "]")}")
                    .AppendLine(CultureInfo.InvariantCulture, $"bucket: {Bucket}")
                    .AppendLine("dimensions:");
                for (var i = 0; i < Dimensions.Count; i++)
                {
                    yaml.AppendLine(CultureInfo.InvariantCulture, $"  d{i}: {(Declared(Dimensions[i]) ? Dimensions[i] : "eventType")}");
                }

                yaml.AppendLine("measures:").AppendLine("  m0: count");
                for (var i = 0; i < Measures.Count; i++)
                {
                    var path = Measures[i][(Measures[i].IndexOf('(', StringComparison.Ordinal) + 1)..].Split(',', ')')[0];
                    var needsNumber = Measures[i].StartsWith("sum", StringComparison.Ordinal) || Measures[i].StartsWith("min", StringComparison.Ordinal)
                        || Measures[i].StartsWith("max", StringComparison.Ordinal) || Measures[i].StartsWith("quantile", StringComparison.Ordinal);
                    var valid = Declared(path) && (!needsNumber || NumberIn[path].Intersect(types).Any());
                    yaml.AppendLine(CultureInfo.InvariantCulture, $"  m{i + 1}: {(valid ? Measures[i] : "count")}");
                }

                if (Filter is not null && Declared(Filter[..Filter.IndexOf(':', StringComparison.Ordinal)]))
                {
                    yaml.AppendLine("filter:").AppendLine("  " + Filter);
                }

                return yaml.ToString();
            }
        }

        /// <summary>The view's dimension paths, as the YAML names them.</summary>
        public IReadOnlyList<string> DimensionPaths => [.. Yaml.Split('\n').SkipWhile(l => l != "dimensions:").Skip(1).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 2)..])];

        /// <summary>The measure definitions as the YAML names them, by index (m0 is count).</summary>
        public IReadOnlyList<string> MeasureDefinitions => [.. Yaml.Split('\n').SkipWhile(l => l != "measures:").Skip(1).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 2)..]).Select(d => d == "count" ? "count()" : d)];

        public bool Passes(EventSpec e)
        {
            if (Filter is null || !Yaml.Contains("filter:", StringComparison.Ordinal))
            {
                return true;
            }

            var path = Filter[..Filter.IndexOf(':', StringComparison.Ordinal)];
            var accepted = Filter[(Filter.IndexOf('[', StringComparison.Ordinal) + 1)..Filter.IndexOf(']', StringComparison.Ordinal)].Split(',').Select(v => v.Trim().Trim('"'));
            return e.Read(path) is { } value && accepted.Contains(value.Text, StringComparer.Ordinal);
        }
    }

    private sealed record Scenario(ViewSpec View, IReadOnlyList<EventSpec> Events, IReadOnlyList<int> Duplicates, IReadOnlyList<int> FlushSizes, int Seed)
    {
        public string Describe() => $"view:\n{View.Yaml}\nevents ({Events.Count}):\n{string.Join("\n", Events)}\nduplicates: {string.Join(",", Duplicates)} flushes: {string.Join(",", FlushSizes)} seed: {Seed}";
    }

    /// <summary>The exact value of one measure in one row.</summary>
    private sealed record Expected(long Number, double? Nullable, IReadOnlyList<(string Item, int Count)> Top);

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
