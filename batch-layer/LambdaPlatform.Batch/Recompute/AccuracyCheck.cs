using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;
using LambdaPlatform.Serving.Store;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Batch.Recompute;

/// <summary>
/// The accuracy report of the real-time side. When a batch run has moved W over a day, and before it drops the day's
/// real-time rows, it compares them — merged over flushes and speed-layer instances exactly as the merged view served
/// them (<see cref="ViewSql.RealtimeMergedSelect"/>) — with the exact batch rows of the same buckets and dimension
/// values. Each measure compares its own two values (<see cref="Measure.Compare"/>), so nothing here knows a kind. The
/// report (<see cref="AccuracyReport"/>) is stored in ClickHouse (<see cref="ServingStore.AccuracyTable"/>), exported as
/// gauges (<see cref="AccuracyMetrics"/>), and a measure exact in real time (count, sum, min, max) that differed in some
/// bucket is logged as a warning naming the buckets. Thread-safe (stateless).
/// </summary>
/// <param name="store">The serving store holding both sides and the reports.</param>
/// <param name="metrics">Where the last report of each view goes.</param>
/// <param name="clock">Stamps the reports.</param>
/// <param name="logger">Warnings and failures.</param>
public sealed class AccuracyCheck(ServingStore store, AccuracyMetrics metrics, TimeProvider clock, ILogger logger)
{
    /// <summary>
    /// Compares, stores, exports and logs the report of <paramref name="view"/> for <paramref name="day"/>; null when the
    /// real-time side holds no rows of the day (nothing to compare) or when the report failed. A report is best effort:
    /// its failure is logged and never fails the batch run.
    /// </summary>
    public async Task<AccuracyReport?> ReportAsync(ViewSql view, DateOnly day, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        try
        {
            var report = await CompareAsync(store.ClickHouse, view, day, clock.GetUtcNow().UtcDateTime, cancellationToken);
            if (report.RealtimeRows == 0)
            {
                return null;
            }

            await store.WriteAccuracyAsync(view, report, cancellationToken);
            metrics.Record(report);
            foreach (var m in report.Measures.Where(m => m.Exact && m.BucketsOutOfBound > 0))
            {
                logger.LogWarning(
                    "accuracy {View} {Day}: the real-time {Measure} ({Definition}) differed from the exact value in {Differing} of {Compared} buckets: {Buckets}",
                    report.View, day, m.Measure, m.Definition, m.BucketsOutOfBound, m.BucketsCompared,
                    string.Join("; ", m.OutOfBoundBuckets) + (m.BucketsOutOfBound > m.OutOfBoundBuckets.Count ? "; …" : string.Empty));
            }

            return report;
        }
#pragma warning disable CA1031 // best effort: a failed report must not stop the batch from dropping rows it covers
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            logger.LogError(e, "accuracy {View} {Day}: the report failed: {Error}", view.View.Name, day, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Compares the view's real-time rows of <paramref name="day"/> with its batch rows of the day (SQL accepted by
    /// ClickHouse 18.16 and 26.5), on the union of their (bucket, dimension values): a row one side lacks has that side's
    /// value over no events.
    /// </summary>
    public static async Task<AccuracyReport> CompareAsync(IClickHouse serving, ViewSql view, DateOnly day, DateTime comparedAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(serving);
        ArgumentNullException.ThrowIfNull(view);
        var start = (long)(day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) - DateTime.UnixEpoch).TotalSeconds;
        var range = string.Create(CultureInfo.InvariantCulture, $"bucket >= toDateTime({start}, 'UTC') AND bucket < toDateTime({start + 86_400}, 'UTC')");
        var realtime = await RowsAsync(serving, view.RealtimeMergedSelect(range), view, cancellationToken);
        var batch = await RowsAsync(serving, $"SELECT {string.Join(", ", view.BatchColumns.Select(c => ViewSql.Quote(c.Name)))} FROM {view.BatchTable} WHERE {range}",
            view, cancellationToken);

        var keys = realtime.Keys.Union(batch.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var measures = new List<MeasureAccuracy>();
        var offset = 1 + view.View.Dimensions.Count;
        foreach (var measure in view.View.Measures)
        {
            var tally = new Tally();
            var width = measure.ServedColumns.Count;
            foreach (var key in keys)
            {
                var r = realtime.TryGetValue(key, out var rf) ? new ArraySegment<string>(rf, offset, width) : (IReadOnlyList<string>?)null;
                var e = batch.TryGetValue(key, out var bf) ? new ArraySegment<string>(bf, offset, width) : (IReadOnlyList<string>?)null;
                tally.Add(measure.Compare(r, e), () => Label(view.View, rf ?? bf!));
            }

            offset += width;
            measures.Add(tally.Result(measure));
        }

        var at = DateTime.UnixEpoch.AddSeconds(Math.Floor((comparedAt.ToUniversalTime() - DateTime.UnixEpoch).TotalSeconds));
        return new AccuracyReport(view.View.Name, day, at, realtime.Count, batch.Count, measures);
    }

    /// <summary>The rows of a query giving the batch columns, by their key: the bucket and dimension fields as ClickHouse wrote them.</summary>
    private static async Task<Dictionary<string, string[]>> RowsAsync(IClickHouse clickHouse, string sql, ViewSql view, CancellationToken cancellationToken)
    {
        var keyWidth = 1 + view.View.Dimensions.Count;
        var rows = new Dictionary<string, string[]>(StringComparer.Ordinal);
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated", cancellationToken);
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync(cancellationToken) is { Length: > 0 } line)
        {
            var fields = line.Split('\t');
            rows[string.Join('\t', fields, 0, keyWidth)] = fields;
        }

        return rows;
    }

    /// <summary>A bucket as people read it: <c>2026-10-01 09:00:00 store=berlin</c>.</summary>
    private static string Label(ViewDefinition view, string[] fields) =>
        string.Join(' ', view.Dimensions.Select((d, i) => $"{d.Name}={ClickHouseText.Unescape(fields[1 + i])}").Prepend(fields[0]));

    /// <summary>One measure's comparisons, added up.</summary>
    private sealed class Tally
    {
        private readonly List<string> _named = [];
        private long _compared;
        private long _outOfBound;
        private long _withError;
        private double _errorSum;
        private double _errorMax;
        private long _misses;
        private ulong _countDifference;

        public void Add(MeasureComparison comparison, Func<string> label)
        {
            _compared++;
            if (comparison.OutOfBound)
            {
                _outOfBound++;
                if (_named.Count < MeasureAccuracy.MaxNamedBuckets)
                {
                    _named.Add(label());
                }
            }

            if (comparison.RelativeError is { } error)
            {
                _withError++;
                _errorSum += error;
                _errorMax = Math.Max(_errorMax, error);
            }

            _misses += comparison.Misses;
            _countDifference += comparison.CountDifference;
        }

        public MeasureAccuracy Result(Measure measure) => new(
            measure.Name, measure.Kind, measure.Definition, Exact: measure.RealtimeRelativeError == 0, measure.RealtimeRelativeError, _compared, _outOfBound,
            _withError > 0 ? _errorMax : null, _withError > 0 ? _errorSum / _withError : null, _misses, _countDifference, _named);
    }
}
