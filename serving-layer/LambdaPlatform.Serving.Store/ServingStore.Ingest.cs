using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Serving.Store;

/// <summary>What one durable speed-layer flush read: records, and the dead letters among them by rule and path.</summary>
/// <param name="ConsumerGroup">The speed layer's consumer group.</param>
/// <param name="Instance">Which process flushed (<c>host/pid</c>).</param>
/// <param name="FlushedAt">When the flush became durable (the writer's clock, UTC).</param>
/// <param name="Records">Records read from the events topic since the previous flush of this instance (valid or not).</param>
/// <param name="DeadLetters">The records among them sent to the dead-letter topic, grouped by rule and path.</param>
public sealed record IngestRecord(string ConsumerGroup, string Instance, DateTime FlushedAt, long Records, IReadOnlyList<DeadLetterGroup> DeadLetters)
{
    /// <summary>Dead letters in the flush.</summary>
    public long DeadLetterCount => DeadLetters.Sum(d => d.Records);
}

/// <summary>Dead letters of one flush that broke the same rule at the same path, with one of them as a sample.</summary>
/// <param name="Rule">The rule broken (e.g. <c>type</c>, <c>required</c>, <c>json</c>).</param>
/// <param name="Path">Where (a JSON path such as <c>$.payload.cartValue</c>), or empty.</param>
/// <param name="Records">How many records.</param>
/// <param name="Reason">The sample's reason, one line as in the dead-letter record's <c>reason</c> header (cut to 512 characters).</param>
/// <param name="Topic">The sample's source topic.</param>
/// <param name="Partition">The sample's source partition.</param>
/// <param name="Offset">The sample's source offset (the whole record stays there, and in <c>events.dlq</c>).</param>
/// <param name="Value">The beginning of the sample's value as text (see <see cref="ServingStore.ShortenValue"/>).</param>
public sealed record DeadLetterGroup(string Rule, string Path, long Records, string Reason, string Topic, int Partition, long Offset, string Value);

/// <summary>Records read and dead-lettered in a time window, from <see cref="ServingStore.IngestTable"/>.</summary>
/// <param name="From">Window start (UTC, server clock).</param>
/// <param name="To">Window end (UTC, server clock).</param>
/// <param name="Records">Records read by the speed layer.</param>
/// <param name="DeadLetters">Records sent to the dead-letter topic.</param>
public sealed record IngestWindow(DateTime From, DateTime To, long Records, long DeadLetters)
{
    /// <summary>Records read per second over the window.</summary>
    public double RecordsPerSecond => Records / Math.Max(1, (To - From).TotalSeconds);

    /// <summary>Dead letters per second over the window.</summary>
    public double DeadLettersPerSecond => DeadLetters / Math.Max(1, (To - From).TotalSeconds);
}

/// <summary>The records the speed layer reads and the dead letters among them (this file of <see cref="ServingStore"/>).</summary>
/// <remarks>
/// Two tables, written by every speed-layer instance at each durable flush and read by every API instance (the operations
/// page), and by analysts: <see cref="IngestTable"/> (one row per flush: records read, dead letters) and
/// <see cref="DeadLettersTable"/> (one row per flush, rule and path: how many, and one sample whose value is shortened).
/// Both are partitioned by day and pruned with the change markers (<see cref="PrunePipelineStateAsync"/>).
/// </remarks>
public sealed partial class ServingStore
{
    /// <summary>One row per durable speed-layer flush: records read and dead-lettered: <c>lambda_ingest</c>.</summary>
    public const string IngestTable = "lambda_ingest";

    /// <summary>One row per flush, rule and path of the records sent to the dead-letter topic, with a sample: <c>lambda_dead_letters</c>.</summary>
    public const string DeadLettersTable = "lambda_dead_letters";

    /// <summary>Longest sample value kept, in characters (160).</summary>
    public const int MaxSampleValueLength = 160;

    /// <summary>Longest reason kept, in characters (512).</summary>
    public const int MaxReasonLength = 512;

    /// <summary>The statements that create the ingest tables (each <c>IF NOT EXISTS</c>); part of <see cref="CreatePipelineStateTables"/>.</summary>
    /// <remarks>Computed on each read, so <see cref="CreatePipelineStateTables"/> (another file's static initializer) can use it in any order.</remarks>
    public static IReadOnlyList<string> CreateIngestTables =>
    [
        $"""
        CREATE TABLE IF NOT EXISTS {IngestTable} (
            flushedAt DateTime, flushedAtMs Int64, consumerGroup String, instance String, records Int64, deadLetters Int64
        ) ENGINE = MergeTree PARTITION BY toYYYYMMDD(flushedAt) ORDER BY (flushedAt, consumerGroup)
        """,
        $"""
        CREATE TABLE IF NOT EXISTS {DeadLettersTable} (
            flushedAt DateTime, flushedAtMs Int64, consumerGroup String, instance String, rule String, path String, records Int64,
            reason String, sourceTopic String, sourcePartition Int32, sourceOffset Int64, sampleValue String
        ) ENGINE = MergeTree PARTITION BY toYYYYMMDD(flushedAt) ORDER BY (flushedAt, rule, path)
        """,
    ];

    private static readonly ClickHouseColumn[] IngestColumns =
    [
        new("flushedAt", "DateTime"), new("flushedAtMs", "Int64"), new("consumerGroup", "String"), new("instance", "String"), new("records", "Int64"), new("deadLetters", "Int64"),
    ];

    private static readonly ClickHouseColumn[] DeadLetterColumns =
    [
        new("flushedAt", "DateTime"), new("flushedAtMs", "Int64"), new("consumerGroup", "String"), new("instance", "String"), new("rule", "String"), new("path", "String"),
        new("records", "Int64"), new("reason", "String"), new("sourceTopic", "String"), new("sourcePartition", "Int32"), new("sourceOffset", "Int64"), new("sampleValue", "String"),
    ];

    /// <summary>Records one flush: its row in <see cref="IngestTable"/> and its dead-letter groups in <see cref="DeadLettersTable"/>.</summary>
    public async Task RecordIngestAsync(IngestRecord flush, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flush);
        var at = DateTime.SpecifyKind(flush.FlushedAt, DateTimeKind.Utc);
        var seconds = DateTime.UnixEpoch.AddSeconds(Math.Floor((at - DateTime.UnixEpoch).TotalSeconds));
        await ClickHouse.InsertAsync(IngestTable, IngestColumns, [[seconds, ToUnixMs(at), flush.ConsumerGroup, flush.Instance, flush.Records, flush.DeadLetterCount]], cancellationToken);
        if (flush.DeadLetters.Count > 0)
        {
            await ClickHouse.InsertAsync(DeadLettersTable, DeadLetterColumns, flush.DeadLetters.Select(d => new object?[]
            {
                seconds, ToUnixMs(at), flush.ConsumerGroup, flush.Instance, d.Rule, d.Path, d.Records, Cut(d.Reason, MaxReasonLength), d.Topic, d.Partition, d.Offset,
                Cut(d.Value, MaxSampleValueLength + 32),
            }), cancellationToken);
        }
    }

    /// <summary>Records read and dead-lettered over the last <paramref name="window"/> by the server's clock; zeros before the first flush.</summary>
    public async Task<IngestWindow> ReadIngestAsync(TimeSpan window, CancellationToken cancellationToken = default)
    {
        var seconds = WindowSeconds(window);
        try
        {
            var rows = await RowsAsync(
                $"SELECT toUnixTimestamp(now()), sum(records), sum(deadLetters) FROM {IngestTable} WHERE flushedAt > now() - {seconds.ToString(CultureInfo.InvariantCulture)}", cancellationToken);
            var f = rows[0];
            var to = FromUnix(long.Parse(f[0], CultureInfo.InvariantCulture));
            return new IngestWindow(to.AddSeconds(-seconds), to, long.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture));
        }
        catch (ClickHouseException e) when (e.ErrorCode == UnknownTable)
        {
            var now = await ReadServerTimeAsync(cancellationToken);
            return new IngestWindow(now.AddSeconds(-seconds), now, 0, 0);
        }
    }

    /// <summary>
    /// Records read and dead-lettered per <paramref name="step"/> over the last <paramref name="window"/> (server clock), oldest
    /// first; a step without flushes is absent.
    /// </summary>
    public async Task<IReadOnlyList<(DateTime At, long Records, long DeadLetters)>> ReadIngestSeriesAsync(TimeSpan window, TimeSpan step, CancellationToken cancellationToken = default)
    {
        var seconds = WindowSeconds(window);
        var stepSeconds = Math.Max(1, (long)step.TotalSeconds);
        try
        {
            var result = new List<(DateTime, long, long)>();
            foreach (var f in await RowsAsync(
                $"SELECT intDiv(toUnixTimestamp(flushedAt), {stepSeconds.ToString(CultureInfo.InvariantCulture)}) * {stepSeconds.ToString(CultureInfo.InvariantCulture)} AS t, sum(records), sum(deadLetters) FROM {IngestTable} "
                + $"WHERE flushedAt > now() - {seconds.ToString(CultureInfo.InvariantCulture)} GROUP BY t ORDER BY t", cancellationToken))
            {
                result.Add((FromUnix(long.Parse(f[0], CultureInfo.InvariantCulture)), long.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture)));
            }

            return result;
        }
        catch (ClickHouseException e) when (e.ErrorCode == UnknownTable)
        {
            return [];
        }
    }

    /// <summary>
    /// The rules and paths that sent the most records to the dead-letter topic over the last <paramref name="window"/>, most first,
    /// each with its newest sample.
    /// </summary>
    public async Task<IReadOnlyList<DeadLetterGroup>> ReadTopDeadLettersAsync(TimeSpan window, int limit = 5, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return await DeadLettersAsync(
            $"SELECT rule, path, sum(records) AS n, argMax(reason, flushedAtMs), argMax(sourceTopic, flushedAtMs), argMax(sourcePartition, flushedAtMs), "
            + $"argMax(sourceOffset, flushedAtMs), argMax(sampleValue, flushedAtMs) FROM {DeadLettersTable} WHERE flushedAt > now() - {WindowSeconds(window).ToString(CultureInfo.InvariantCulture)} "
            + $"GROUP BY rule, path ORDER BY n DESC, rule, path LIMIT {limit.ToString(CultureInfo.InvariantCulture)}", cancellationToken);
    }

    /// <summary>The newest <paramref name="limit"/> dead-letter samples (one per flush, rule and path), newest first, with when they were flushed.</summary>
    public async Task<IReadOnlyList<(DateTime FlushedAt, DeadLetterGroup Sample)>> ReadDeadLetterSamplesAsync(int limit = 5, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        try
        {
            var result = new List<(DateTime, DeadLetterGroup)>();
            foreach (var f in await RowsAsync(
                $"SELECT flushedAtMs, rule, path, records, reason, sourceTopic, sourcePartition, sourceOffset, sampleValue FROM {DeadLettersTable} "
                + $"ORDER BY flushedAt DESC, flushedAtMs DESC LIMIT {limit.ToString(CultureInfo.InvariantCulture)}", cancellationToken))
            {
                result.Add((FromUnixMs(long.Parse(f[0], CultureInfo.InvariantCulture)), Group(f[1..])));
            }

            return result;
        }
        catch (ClickHouseException e) when (e.ErrorCode == UnknownTable)
        {
            return [];
        }
    }

    /// <summary>
    /// The beginning of a record's value as one line of text, for a sample: invalid UTF-8 replaced, control characters as
    /// <c>\uXXXX</c>, at most <see cref="MaxSampleValueLength"/> characters, then <c>… (N bytes)</c> when longer; <c>(null)</c> for none.
    /// </summary>
    public static string ShortenValue(ReadOnlySpan<byte> value, bool isNull = false)
    {
        if (isNull)
        {
            return "(null)";
        }

        var prefix = Math.Min(value.Length, MaxSampleValueLength * 4);
        var head = System.Text.Encoding.UTF8.GetString(value[..prefix]);
        var text = new System.Text.StringBuilder(MaxSampleValueLength + 32);
        var used = 0;
        for (; used < head.Length && text.Length < MaxSampleValueLength; used++)
        {
            var c = head[used];
            if (char.IsControl(c))
            {
                text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
            else
            {
                text.Append(c);
            }
        }

        if (used < head.Length || prefix < value.Length)
        {
            text.Append(CultureInfo.InvariantCulture, $"… ({value.Length:N0} bytes)");
        }

        return text.ToString();
    }

    private async Task<IReadOnlyList<DeadLetterGroup>> DeadLettersAsync(string sql, CancellationToken cancellationToken)
    {
        try
        {
            return [.. (await RowsAsync(sql, cancellationToken)).Select(Group)];
        }
        catch (ClickHouseException e) when (e.ErrorCode == UnknownTable)
        {
            return [];
        }
    }

    /// <summary>rule, path, records, reason, topic, partition, offset, value.</summary>
    private static DeadLetterGroup Group(string[] f) => new(
        Unescape(f[0]), Unescape(f[1]), long.Parse(f[2], CultureInfo.InvariantCulture), Unescape(f[3]), Unescape(f[4]),
        int.Parse(f[5], CultureInfo.InvariantCulture), long.Parse(f[6], CultureInfo.InvariantCulture), Unescape(f[7]));

    private static long WindowSeconds(TimeSpan window)
    {
        if (window <= TimeSpan.Zero || window > TimeSpan.FromDays(7))
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, "the window must be between 0 and 7 days");
        }

        return (long)Math.Ceiling(window.TotalSeconds);
    }

    private static string Cut(string text, int max) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max - 1), "…");
}
