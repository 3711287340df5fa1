using System.Globalization;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Serving.Store;

/// <summary>
/// The pipeline's own state in the serving ClickHouse, readable by every process: how far each speed-layer partition is
/// flushed, how far the archiver has archived, which batch runs happened, and a change marker per view. This file:
/// the tables and their retention. SQL accepted by ClickHouse 18.16 and 26.5.
/// </summary>
public sealed partial class ServingStore
{
    /// <summary>Speed-layer progress per consumer group and Kafka partition: <c>lambda_speed_progress</c>.</summary>
    public const string SpeedProgressTable = "lambda_speed_progress";

    /// <summary>Archiver progress per Kafka partition: <c>lambda_archive_progress</c>.</summary>
    public const string ArchiveProgressTable = "lambda_archive_progress";

    /// <summary>One row per (view, day) a batch run computed: <c>lambda_batch_runs</c>.</summary>
    public const string BatchRunsTable = "lambda_batch_runs";

    /// <summary>One row per change of a view's served rows (flush, batch swap, W move): <c>lambda_view_changes</c>.</summary>
    public const string ViewChangesTable = "lambda_view_changes";

    /// <summary>Where a process that writes pipeline state is, for people reading the tables: <c>host/pid</c>.</summary>
    public static string ThisInstance { get; } = string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}/{Environment.ProcessId}");

    /// <summary>The statements that create the pipeline-state tables (each <c>IF NOT EXISTS</c>).</summary>
    public static IReadOnlyList<string> CreatePipelineStateTables { get; } =
    [
        // ReplacingMergeTree keeps the newest flush per partition after merges; readers take argMax by flush time.
        $"""
        CREATE TABLE IF NOT EXISTS {SpeedProgressTable} (
            consumerGroup String, topic String, kafkaPartition Int32,
            nextOffset Int64, newestEventMs Int64, highWatermark Int64, flushedAtMs Int64, instance String
        ) ENGINE = ReplacingMergeTree(flushedAtMs) ORDER BY (consumerGroup, topic, kafkaPartition)
        """,
        $"""
        CREATE TABLE IF NOT EXISTS {ArchiveProgressTable} (
            kafkaPartition Int32, archivedThrough Int64, recordedAtMs Int64, instance String
        ) ENGINE = ReplacingMergeTree(archivedThrough) ORDER BY kafkaPartition
        """,
        $"""
        CREATE TABLE IF NOT EXISTS {BatchRunsTable} (
            view String, day Date, rowsIn Int64, rowsOut Int64, durationMs Int64, watermark DateTime, watermarkHeld String,
            finishedAtMs Int64, instance String
        ) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (view, finishedAtMs)
        """,

        // insertedAt is the server's clock, so readers follow new rows without trusting the writers' clocks.
        $"""
        CREATE TABLE IF NOT EXISTS {ViewChangesTable} (
            view String, fromBucket DateTime, toBucket DateTime, source String, changeId UInt64, instance String,
            insertedAt DateTime DEFAULT now()
        ) ENGINE = MergeTree PARTITION BY toYYYYMMDD(insertedAt) ORDER BY (insertedAt, view)
        """,

        // Records read and dead letters per flush (ServingStore.Ingest.cs).
        .. CreateIngestTables,
    ];

    /// <summary>Creates the pipeline-state tables if missing. Idempotent; needs a user that may create tables.</summary>
    public async Task EnsurePipelineStateAsync(CancellationToken cancellationToken = default)
    {
        foreach (var statement in CreatePipelineStateTables)
        {
            await ClickHouse.ExecuteAsync(statement, cancellationToken);
        }
    }

    /// <summary>
    /// Drops change markers, ingest counts and dead-letter samples of days before <paramref name="changesBefore"/> and batch-run rows of months wholly before
    /// <paramref name="runsBefore"/> (whole partitions: cheap). Progress tables keep one row per partition and need none.
    /// </summary>
    /// <returns>The partitions dropped, as <c>table:partition</c>.</returns>
    public async Task<IReadOnlyList<string>> PrunePipelineStateAsync(DateTime changesBefore, DateTime runsBefore, CancellationToken cancellationToken = default)
    {
        var dropped = new List<string>();
        foreach (var (table, before, format) in new[] { (ViewChangesTable, changesBefore.Date, "yyyyMMdd"), (IngestTable, changesBefore.Date, "yyyyMMdd"), (DeadLettersTable, changesBefore.Date, "yyyyMMdd"), (BatchRunsTable, new DateTime(runsBefore.Year, runsBefore.Month, 1, 0, 0, 0, DateTimeKind.Utc), "yyyyMM") })
        {
            var limit = long.Parse(before.ToString(format, CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            foreach (var fields in await RowsAsync(
                $"SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = {ViewSql.Literal(table)} AND active", cancellationToken))
            {
                if (long.TryParse(fields[0].Trim('\''), NumberStyles.None, CultureInfo.InvariantCulture, out var partition) && partition < limit)
                {
                    await ClickHouse.ExecuteAsync($"ALTER TABLE {table} DROP PARTITION {partition.ToString(CultureInfo.InvariantCulture)}", cancellationToken);
                    dropped.Add($"{table}:{partition.ToString(CultureInfo.InvariantCulture)}");
                }
            }
        }

        return dropped;
    }

    private static long ToUnixMs(DateTime time) => (long)Math.Floor((time - DateTime.UnixEpoch).TotalMilliseconds);

    private static DateTime FromUnixMs(long ms) => DateTime.UnixEpoch.AddMilliseconds(ms);
}
