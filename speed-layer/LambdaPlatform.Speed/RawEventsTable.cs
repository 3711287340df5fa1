using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Speed;

/// <summary>
/// The raw <c>events</c> table analysts query: every valid event as received, one row per Kafka record.
/// A <c>ReplacingMergeTree</c> whose sorting key ends with the Kafka partition and offset, so a batch
/// written twice after a crash collapses to one row per record (<c>SELECT ... FROM events FINAL</c>
/// gives exact counts at any time; merges converge to them). The SQL is accepted by ClickHouse 18.16 and 26.5.
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
        ORDER BY (eventType, timestamp, kafkaPartition, kafkaOffset)
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
