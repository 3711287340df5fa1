using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Serialization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// <c>peer.clickhouse_kafka.events_per_s</c>, "ClickHouse alone": chDB 26.5's Kafka table engine reads the run's topic
/// from the same dev broker and materialized views compute what the speed layer computes: the raw events table (the
/// platform's own DDL) and every shipped view as <c>-State</c> aggregates in an AggregatingMergeTree (count → countState,
/// sum → sumState, distinct → uniqState, quantile → quantileState, …), derived from the same view definitions. Timed from
/// the <c>CREATE</c> of the Kafka table until every event is in the raw table and in every all-events view (polled).
/// </summary>
/// <remarks>
/// <para>The Kafka table feeds one materialized view into a <c>Null</c> table of parsed events, and the raw table and the
/// views hang off that one. They are all created before the Kafka table, so the first block already reaches every
/// target (views attached to the Kafka table one after another would let the first blocks reach only some).</para>
/// <para>It runs in a child process: the bench process holds its own chDB, and chDB allows one data path per process.
/// Tuning that worked on 2 cores: one thread per consumer, one consumer per core, 262,144-row blocks and polls, and blocks
/// flushed at least every second (<c>kafka_flush_interval_ms</c>, the speed layer's flush interval; the default 7.5 s would
/// time the flush timer). Unlike
/// the speed layer it validates nothing against the event schemas, sends nothing to a dead-letter topic and removes no
/// duplicates; that is what a user picking "ClickHouse alone" gets.</para>
/// </remarks>
internal static class ClickHouseKafkaPeer
{
    public const string ChildFlag = "--clickhouse-kafka-child";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    /// <summary>One measurement in a child process; returns its result.</summary>
    public static Task<PeerResult> RunInChildAsync(string bootstrapServers, BenchTopic topic) =>
        Harness.RunChildAsync<PeerResult>([ChildFlag, bootstrapServers, topic.Name, topic.Count.ToString(CultureInfo.InvariantCulture)]);

    /// <summary>The child: args are the bootstrap servers, topic, event count and the output path.</summary>
    public static async Task<int> ChildAsync(string[] args)
    {
        var (bootstrap, topic, count, output) = (args[0], args[1], long.Parse(args[2], CultureInfo.InvariantCulture), args[3]);
        var data = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-chkafka-" + Guid.NewGuid().ToString("N"));
        try
        {
            PeerResult result;
            await using (var chdb = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = data }))
            {
                result = await MeasureAsync(chdb, bootstrap, topic, count);
            }

            await File.WriteAllTextAsync(output, System.Text.Json.JsonSerializer.Serialize(result));
            return 0;
        }
        finally
        {
            Harness.DeleteFolder(data);
        }
    }

    private static async Task<PeerResult> MeasureAsync(ChDbClickHouse chdb, string bootstrap, string topic, long count)
    {
        const string Db = "peer";
        var schemas = EventSchemaRegistry.LoadDefault();
        var views = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), schemas);
        await chdb.ExecuteAsync($"CREATE DATABASE IF NOT EXISTS {Db}");

        // Parsed events, with the master dataset's column names (so the view compiler's field SQL applies).
        await chdb.ExecuteAsync($"""
            CREATE TABLE {Db}.parsed (
                eventId UUID, eventType String, timestamp DateTime64(3, 'UTC'), userId String, source String, version String,
                payload String, kafkaPartition UInt16, kafkaOffset UInt64
            ) ENGINE = Null
            """);

        var raw = new RawEventsTable(chdb, $"{Db}.events");
        await raw.InitializeAsync();
        await chdb.ExecuteAsync($"""
            CREATE MATERIALIZED VIEW {Db}.events_mv TO {Db}.events AS
            SELECT p.eventId AS eventId, p.eventType AS eventType, toDateTime(p.timestamp, 'UTC') AS timestamp,
                   toUInt16(toUnixTimestamp64Milli(p.timestamp) % 1000) AS millis, p.userId AS userId, p.source AS source,
                   p.version AS version, p.payload AS payload, p.kafkaPartition AS kafkaPartition, p.kafkaOffset AS kafkaOffset
            FROM {Db}.parsed AS p
            """);

        var allEvents = new List<string>();
        foreach (var view in views)
        {
            var select = ViewSelect(view, $"{Db}.parsed");
            var key = string.Join(", ", view.Dimensions.Select(d => ViewSql.Quote(d.Name)).Prepend("bucket"));
            await chdb.ExecuteAsync($"CREATE TABLE {Db}.{view.Name} ENGINE = AggregatingMergeTree PARTITION BY toYYYYMMDD(bucket) ORDER BY ({key}) EMPTY AS {select}");
            await chdb.ExecuteAsync($"CREATE MATERIALIZED VIEW {Db}.{view.Name}_mv TO {Db}.{view.Name} AS {select}");
            if (view.EventTypes is null && view.Filters.Count == 0 && view.Measures.FirstOrDefault(m => m.Kind == MeasureKind.Count) is { } counted)
            {
                allEvents.Add($"(SELECT countMerge({ViewSql.Quote(counted.Name)}) FROM {Db}.{view.Name})");
            }
        }

        var consumers = Math.Max(1, Environment.ProcessorCount);
        var group = "bench-chkafka-" + Guid.NewGuid().ToString("N")[..12];
        var poll = $"SELECT (SELECT count() FROM {Db}.events){string.Concat(allEvents.Select(a => ", " + a))}";

        // librdkafka settings reach the Kafka engine only through a named collection (or the server's config file). The
        // classic group protocol with the settings the platform's own consumers use with it (KafkaDefaults): the mock
        // broker completes a classic rebalance only after about the session timeout (librdkafka's default 45 s would
        // stall the second consumer's join). group.protocol=consumer fails in the engine ("Local: Erroneous state").
        await chdb.ExecuteAsync("CREATE NAMED COLLECTION IF NOT EXISTS bench_kafka AS kafka_format = 'JSONEachRow', `kafka.session_timeout_ms` = '6000', `kafka.heartbeat_interval_ms` = '1000'");

        var stopwatch = Stopwatch.StartNew();
        await chdb.ExecuteAsync($"""
            CREATE TABLE {Db}.queue (eventId UUID, eventType String, timestamp DateTime64(3, 'UTC'), userId String, payload String, metadata String)
            ENGINE = Kafka(bench_kafka) SETTINGS
                kafka_broker_list = {ViewSql.Literal(bootstrap)}, kafka_topic_list = {ViewSql.Literal(topic)},
                kafka_group_name = {ViewSql.Literal(group)}, kafka_format = 'JSONEachRow',
                kafka_num_consumers = {consumers}, kafka_thread_per_consumer = 1,
                kafka_max_block_size = 262144, kafka_poll_max_batch_size = 262144,
                kafka_flush_interval_ms = 1000,
                date_time_input_format = 'best_effort', input_format_json_read_objects_as_strings = 1
            """);
        await chdb.ExecuteAsync($"""
            CREATE MATERIALIZED VIEW {Db}.queue_mv TO {Db}.parsed AS
            SELECT eventId, eventType, timestamp, userId, JSONExtractString(metadata, 'source') AS source,
                   JSONExtractString(metadata, 'version') AS version, payload, _partition AS kafkaPartition, _offset AS kafkaOffset
            FROM {Db}.queue
            """);
        long[] seen = [];
        await Harness.PollAsync(async () =>
        {
            seen = await ScalarsAsync(chdb, poll);
            if (seen.All(n => n >= count))
            {
                // A rebalance can deliver records twice (the engine commits after its block): count distinct records.
                seen[0] = (await ScalarsAsync(chdb, $"SELECT uniqExact(kafkaPartition, kafkaOffset) FROM {Db}.events"))[0];
            }

            return seen.All(n => n >= count);
        }, Deadline, () => $"the Kafka engine delivering {count:N0} events (raw and views: {string.Join(", ", seen)})", TimeSpan.FromMilliseconds(10));
        var elapsed = stopwatch.Elapsed;

        var checkout = views.FirstOrDefault(v => v.Name == "checkout_revenue");
        var detail = string.Empty;
        if (checkout?.Measures.FirstOrDefault(m => m.Kind == MeasureKind.Count) is { } orders)
        {
            var n = await ScalarsAsync(chdb, $"SELECT (SELECT countMerge({ViewSql.Quote(orders.Name)}) FROM {Db}.checkout_revenue), (SELECT count() FROM {Db}.events WHERE eventType = 'user.action.checkout')");
            detail = $"checkout_revenue counted {n[0]:N0} orders of {n[1]:N0} checkout events";
        }

        // The Kafka table first: dropping its materialized view while its consumers stream hangs in chDB 26.5.
        await chdb.ExecuteAsync($"DROP TABLE {Db}.queue");
        await chdb.ExecuteAsync($"DROP TABLE {Db}.queue_mv");
        return new PeerResult(elapsed.TotalSeconds, seen[0], detail);
    }

    /// <summary>The view as <c>-State</c> aggregates over the parsed events (bucket, dimensions, one state per measure).</summary>
    private static string ViewSelect(ViewDefinition view, string source)
    {
        var sql = new ViewSql(view);
        var select = new List<string> { $"{sql.BucketExpression("timestamp")} AS bucket" };
        select.AddRange(view.Dimensions.Select(d => $"{ViewSql.FieldSql(d.Path, asText: true)} AS {ViewSql.Quote(d.Name)}"));
        foreach (var m in view.Measures)
        {
            var name = ViewSql.Quote(m.Name);
            string Value(bool asText) => ViewSql.FieldSql(m.Path ?? throw new InvalidOperationException($"measure {m.Name} has no field"), asText);
            select.Add(m.Kind switch
            {
                MeasureKind.Count => $"countState() AS {name}",
                MeasureKind.Sum => $"sumState({Value(false)}) AS {name}",
                MeasureKind.Min => $"minState({Value(false)}) AS {name}",
                MeasureKind.Max => $"maxState({Value(false)}) AS {name}",
                MeasureKind.Distinct => $"uniqState({Value(m.Path!.Type != FieldType.Number)}) AS {name}",
                MeasureKind.Quantile => $"quantileState({m.Quantile.ToString("R", CultureInfo.InvariantCulture)})({Value(false)}) AS {name}",
                MeasureKind.TopK => $"topKState({m.K.ToString(CultureInfo.InvariantCulture)})({Value(true)}) AS {name}",
                _ => throw new NotSupportedException($"measure kind {m.Kind} has no -State form in the peer"),
            });
        }

        var where = new List<string>();
        if (view.EventTypes is { } types)
        {
            where.Add($"eventType IN ({string.Join(", ", types.Select(ViewSql.Literal))})");
        }

        foreach (var f in view.Filters)
        {
            where.Add($"{ViewSql.FieldSql(f.Path, asText: true)} IN ({string.Join(", ", f.Values.Select(ViewSql.Literal))})");
        }

        var groupBy = string.Join(", ", view.Dimensions.Select(d => ViewSql.Quote(d.Name)).Prepend("bucket"));
        return $"SELECT {string.Join(", ", select)} FROM {source}{(where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty)} GROUP BY {groupBy}";
    }

    private static async Task<long[]> ScalarsAsync(ChDbClickHouse clickHouse, string sql)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return [.. (await reader.ReadToEndAsync()).Trim().Split('\t').Select(s => long.Parse(s, CultureInfo.InvariantCulture))];
    }
}

/// <summary>What one run of the ClickHouse Kafka peer measured.</summary>
/// <param name="Seconds">From CREATE of the Kafka table until every event was in the raw table and the all-events views.</param>
/// <param name="RawRows">Rows in the raw table then.</param>
/// <param name="Detail">A consistency note on the checkout view.</param>
internal sealed record PeerResult(
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("rawRows")] long RawRows,
    [property: JsonPropertyName("detail")] string Detail);
