using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Serving.Store;

/// <summary>What one batch run did for one (view, day).</summary>
/// <param name="View">The view.</param>
/// <param name="Day">The day (UTC).</param>
/// <param name="RowsIn">Master-dataset events read.</param>
/// <param name="RowsOut">Batch rows loaded.</param>
/// <param name="Duration">Wall time of the day's recompute.</param>
/// <param name="Watermark">The view's W after the day, or null before any batch.</param>
/// <param name="WatermarkHeld">Why W did not move over the day, or null.</param>
/// <param name="FinishedAt">When the day was done (the batch's clock, UTC).</param>
/// <param name="Instance">Which process ran it (<c>host/pid</c>).</param>
public sealed record BatchRunRecord(string View, DateOnly Day, long RowsIn, long RowsOut, TimeSpan Duration, DateTime? Watermark, string? WatermarkHeld, DateTime FinishedAt, string Instance);

/// <summary>Batch runs (this file of <see cref="ServingStore"/>).</summary>
public sealed partial class ServingStore
{
    private static readonly ClickHouseColumn[] BatchRunColumns =
    [
        new("view", "String"), new("day", "Date"), new("rowsIn", "Int64"), new("rowsOut", "Int64"), new("durationMs", "Int64"),
        new("watermark", "DateTime"), new("watermarkHeld", "String"), new("finishedAtMs", "Int64"), new("instance", "String"),
    ];

    /// <summary>
    /// Records a (view, day) of a batch run, and the view's change marker for that day: its batch rows were swapped and W
    /// may have moved over it, so cached answers of the day are stale.
    /// </summary>
    public async Task RecordBatchRunAsync(BatchRunRecord run, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        await ClickHouse.InsertAsync(BatchRunsTable, BatchRunColumns,
        [[
            run.View, run.Day, run.RowsIn, run.RowsOut, (long)run.Duration.TotalMilliseconds, run.Watermark ?? DateTime.UnixEpoch, run.WatermarkHeld ?? string.Empty,
            ToUnixMs(run.FinishedAt), run.Instance,
        ]], cancellationToken);
        var start = run.Day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        await RecordViewChangesAsync([new ViewChange(run.View, start, start.AddDays(1).AddSeconds(-1), "batch")], run.Instance, cancellationToken);
    }

    /// <summary>The newest <paramref name="limit"/> batch-run records of <paramref name="view"/> (every view when null), newest first.</summary>
    public async Task<IReadOnlyList<BatchRunRecord>> ReadBatchRunsAsync(string? view = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var where = view is null ? string.Empty : $" WHERE view = {ViewSql.Literal(view)}";
        var result = new List<BatchRunRecord>();
        foreach (var f in await RowsAsync(
            $"SELECT view, toString(day), rowsIn, rowsOut, durationMs, toUnixTimestamp(watermark), watermarkHeld, finishedAtMs, instance FROM {BatchRunsTable}{where} "
            + $"ORDER BY finishedAtMs DESC LIMIT {limit.ToString(CultureInfo.InvariantCulture)}", cancellationToken))
        {
            var w = long.Parse(f[5], CultureInfo.InvariantCulture);
            var held = Unescape(f[6]);
            result.Add(new BatchRunRecord(Unescape(f[0]), DateOnly.ParseExact(f[1], "yyyy-MM-dd", CultureInfo.InvariantCulture),
                long.Parse(f[2], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture), TimeSpan.FromMilliseconds(long.Parse(f[4], CultureInfo.InvariantCulture)),
                w > 0 ? DateTime.UnixEpoch.AddSeconds(w) : null, held.Length == 0 ? null : held, FromUnixMs(long.Parse(f[7], CultureInfo.InvariantCulture)), Unescape(f[8])));
        }

        return result;
    }
}
