using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Speed;

/// <summary>
/// The raw <c>events</c> table analysts query: every valid event as received. A <c>ReplacingMergeTree</c> whose
/// sorting key is (event type, event time, eventId): rows with the same eventId, type and time collapse to one —
/// a batch written twice after a crash, and an event its producer re-sent (a new Kafka offset) alike — so
/// <c>SELECT … FROM events FINAL</c> counts each event once at any time (merges converge to it). Two different
/// events that share an eventId but not its type and time stay two rows (the views count them once). The SQL is
/// accepted by ClickHouse 18.16 and 26.5.
/// </summary>
public sealed class RawEventsTable(IClickHouse clickHouse, string table = RawEventsTable.DefaultName) : IEventSink
{
    /// <summary>Default table name.</summary>
    public const string DefaultName = "events";

    private static readonly ClickHouseColumn[] Columns =
    [
        new("eventId", "UUID"),
        new("eventType", "String"),
        new("timestamp", "DateTime"),
        new("millis", "UInt16"),
        new("userId", "String"),
        new("source", "String"),
        new("version", "String"),
        new("payload", "String"),
        new("kafkaPartition", "UInt16"),
        new("kafkaOffset", "UInt64"),
    ];

    /// <inheritdoc />
    public string Name => "raw-events";

    /// <summary>The table's name.</summary>
    public string Table => table;

    /// <summary>The DDL of the table.</summary>
    public string CreateTableSql => $"""
        CREATE TABLE IF NOT EXISTS {table} (
            eventId UUID,
            eventType String,
            timestamp DateTime('UTC'),
            millis UInt16,
            userId String,
            source String,
            version String,
            payload String,
            kafkaPartition UInt16,
            kafkaOffset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMMDD(timestamp)
        ORDER BY (eventType, timestamp, eventId)
        """;

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken = default) => clickHouse.ExecuteAsync(CreateTableSql, cancellationToken);

    /// <inheritdoc />
    public async Task WriteAsync(IReadOnlyList<ConsumedEvent> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        await clickHouse.InsertAsync(table, Columns, batch.Select(ToRow), cancellationToken);
    }

    private static object?[] ToRow(ConsumedEvent c)
    {
        var e = c.Event;
        var seconds = new DateTime(e.Timestamp.Ticks - (e.Timestamp.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
        return
        [
            e.EventId,
            e.EventType,
            seconds,
            (ushort)e.Timestamp.Millisecond,
            e.UserId,
            e.Source,
            e.Version,
            System.Text.Encoding.UTF8.GetString(e.Payload.Span),
            (ushort)c.Partition,
            (ulong)c.Offset,
        ];
    }
}
