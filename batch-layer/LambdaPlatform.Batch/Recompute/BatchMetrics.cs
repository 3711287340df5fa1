using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace LambdaPlatform.Batch.Recompute;

/// <summary>The batch recompute's instruments, on the meter <see cref="MeterName"/>. Thread-safe.</summary>
public sealed class BatchMetrics : IDisposable
{
    /// <summary>Name of the meter every batch instrument is on.</summary>
    public const string MeterName = "LambdaPlatform.Batch.Recompute";

    /// <summary>Reason tag: the day is still open for late events.</summary>
    public const string DayOpen = "day_open";

    /// <summary>Reason tag: an earlier day is not below W yet.</summary>
    public const string EarlierDay = "earlier_day";

    /// <summary>Reason tag: the master dataset does not hold everything the real-time side counted for the day.</summary>
    public const string ArchiveBehind = "archive_behind";

    /// <summary>Outcome tag of a run that finished.</summary>
    public const string Ok = "ok";

    /// <summary>Outcome tag of a run that threw (cancellation is not counted).</summary>
    public const string Failed = "failed";

    private readonly Meter _meter;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastSuccess = new(StringComparer.Ordinal);

    /// <summary>Creates the instruments (through <paramref name="meterFactory"/> when given, so hosts can collect them).</summary>
    public BatchMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Days = _meter.CreateCounter<long>("lambda.batch.days", "{day}", "View-days recomputed, by view.");
        WatermarkHeld = _meter.CreateCounter<long>("lambda.batch.watermark.held", "{day}",
            "View-days recomputed over which W could not move, by view and reason (day_open, earlier_day, archive_behind).");
        Runs = _meter.CreateCounter<long>("lambda.batch.runs", "{run}", "Batch runs that covered the view, by view and outcome (ok, failed).");
        _meter.CreateObservableGauge("lambda.batch.last_success.timestamp", ObserveLastSuccess, "s",
            "When the last successful batch run covering the view finished in this process (Unix time, seconds).");
        Accuracy = new AccuracyMetrics(_meter);
    }

    /// <summary>View-days recomputed (tag <c>view</c>).</summary>
    public Counter<long> Days { get; }

    /// <summary>View-days over which W did not move (tags <c>view</c>, <c>reason</c>).</summary>
    public Counter<long> WatermarkHeld { get; }

    /// <summary>Batch runs (tags <c>view</c>, <c>outcome</c>).</summary>
    public Counter<long> Runs { get; }

    /// <summary>The last accuracy report of each view and measure (gauges <c>lambda.accuracy.*</c>).</summary>
    public AccuracyMetrics Accuracy { get; }

    /// <summary>Records a run that covered <paramref name="views"/> and finished at <paramref name="at"/> with <paramref name="outcome"/> (<see cref="Ok"/> or <see cref="Failed"/>).</summary>
    public void RunFinished(IEnumerable<string> views, string outcome, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(views);
        foreach (var view in views)
        {
            Runs.Add(1, new KeyValuePair<string, object?>("view", view), new KeyValuePair<string, object?>("outcome", outcome));
            if (outcome == Ok)
            {
                _lastSuccess[view] = at;
            }
        }
    }

    private IEnumerable<Measurement<double>> ObserveLastSuccess() =>
        _lastSuccess.Select(kv => new Measurement<double>(kv.Value.ToUnixTimeMilliseconds() / 1000.0, new KeyValuePair<string, object?>("view", kv.Key)));

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
