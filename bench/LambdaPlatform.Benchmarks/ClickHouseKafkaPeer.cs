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
/// platform's own DDL) and both shipped views as <c>-State</c> aggregates in an AggregatingMergeTree (count → countState,
/// sum → sumState, distinct → uniqState, quantile → quantileState), written by hand as a ClickHouse user would. Timed from
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

        foreach (var (name, key, select) in PeerViews($"{Db}.parsed"))
        {
            await chdb.ExecuteAsync($"CREATE TABLE {Db}.{name} ENGINE = AggregatingMergeTree PARTITION BY toYYYYMMDD(bucket) ORDER BY ({key}) EMPTY AS {select}");
            await chdb.ExecuteAsync($"CREATE MATERIALIZED VIEW {Db}.{name}_mv TO {Db}.{name} AS {select}");
        }

        // activity_by_type counts every event: the clock stops when it (and the raw table) holds them all.
        List<string> allEvents = [$"(SELECT countMerge(events) FROM {Db}.activity_by_type)"];
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

        var n = await ScalarsAsync(chdb, $"SELECT (SELECT countMerge(orders) FROM {Db}.checkout_revenue), (SELECT count() FROM {Db}.events WHERE eventType = 'user.action.checkout')");
        var detail = $"checkout_revenue counted {n[0]:N0} orders of {n[1]:N0} checkout events";

        // The Kafka table first: dropping its materialized view while its consumers stream hangs in chDB 26.5.
        await chdb.ExecuteAsync($"DROP TABLE {Db}.queue");
        await chdb.ExecuteAsync($"DROP TABLE {Db}.queue_mv");
        return new PeerResult(elapsed.TotalSeconds, seen[0], detail);
    }

    /// <summary>
    /// The two shipped views (schemas/views/*.yaml) as a ClickHouse user would write them by hand for ClickHouse alone:
    /// <c>-State</c> aggregates over the parsed events, one AggregatingMergeTree per view (the peer is written
    /// independently of the platform's view compiler, as a peer should be).
    /// </summary>
    private static (string Name, string Key, string Select)[] PeerViews(string source) =>
    [
        ("activity_by_type", "bucket, eventType, source",
            $"SELECT toStartOfHour(timestamp, 'UTC') AS bucket, eventType, source, countState() AS events, uniqState(userId) AS users FROM {source} GROUP BY bucket, eventType, source"),
        ("checkout_revenue", "bucket, store",
            $"SELECT toStartOfMinute(timestamp, 'UTC') AS bucket, JSONExtractString(payload, 'location') AS store, countState() AS orders, "
            + "sumState(JSONExtractFloat(payload, 'cartValue')) AS revenue, uniqState(userId) AS buyers, quantileState(0.99)(JSONExtractFloat(payload, 'cartValue')) AS p99_cart "
            + $"FROM {source} WHERE eventType = 'user.action.checkout' GROUP BY bucket, store"),
    ];

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
