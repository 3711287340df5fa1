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

        await clickHouse.InsertAsync(table, Columns, batch, WriteRow, cancellationToken);
    }

    /// <summary>One event in the order of <see cref="Columns"/>, straight into RowBinary: nothing boxed, the payload's bytes as they are.</summary>
    private static void WriteRow(RowBinaryWriter writer, in ConsumedEvent c)
    {
        var e = c.Event;

        // The event time is UTC whatever its Kind says; DateTime keeps whole seconds (cut off), millis the rest.
        writer.WriteUuid(e.EventId);
        writer.WriteString(e.EventType);
        writer.WriteDateTime(DateTime.SpecifyKind(e.Timestamp, DateTimeKind.Utc));
        writer.WriteUInt16((ushort)e.Timestamp.Millisecond);
        writer.WriteString(e.UserId);
        writer.WriteString(e.Source);
        writer.WriteString(e.Version);
        writer.WriteUtf8(e.Payload.Span); // UTF-8 already: the decoder read it as JSON
        writer.WriteUInt16((ushort)c.Partition);
        writer.WriteUInt64((ulong)c.Offset);
    }
}
