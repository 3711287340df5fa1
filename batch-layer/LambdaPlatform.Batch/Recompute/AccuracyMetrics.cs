using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using LambdaPlatform.Serving.Store;

namespace LambdaPlatform.Batch.Recompute;

/// <summary>
/// The last accuracy report of each view and measure in this process, as gauges on the batch meter
/// (<see cref="BatchMetrics.MeterName"/>), tagged <c>view</c>, <c>measure</c>, <c>kind</c> and <c>exact</c>
/// (<c>true</c> for kinds exact in real time). A gauge appears after the first report of its view in this process; the
/// reports themselves stay in ClickHouse (<see cref="ServingStore.AccuracyTable"/>). Thread-safe.
/// </summary>
public sealed class AccuracyMetrics
{
    private readonly ConcurrentDictionary<(string View, string Measure), MeasureAccuracy> _latest = new();

    /// <summary>Creates the gauges on <paramref name="meter"/>.</summary>
    internal AccuracyMetrics(Meter meter)
    {
        meter.CreateObservableGauge("lambda.accuracy.buckets_compared", () => Whole(m => m.BucketsCompared), "{bucket}",
            "Buckets (time bucket and dimension values) the last accuracy report compared, by view and measure.");
        meter.CreateObservableGauge("lambda.accuracy.buckets_out_of_bound", () => Whole(m => m.BucketsOutOfBound), "{bucket}",
            "Buckets of the last accuracy report whose real-time value was further from the exact one than the kind's bound (exact=\"true\": a count, sum, min or max that differed).");
        meter.CreateObservableGauge("lambda.accuracy.relative_error.max", () => Fraction(m => m.MaxRelativeError), null,
            "Largest relative error of the real-time value against the exact one in the last accuracy report, by view and measure.");
        meter.CreateObservableGauge("lambda.accuracy.relative_error.mean", () => Fraction(m => m.MeanRelativeError), null,
            "Mean relative error of the real-time value against the exact one in the last accuracy report, by view and measure.");
        meter.CreateObservableGauge("lambda.accuracy.relative_error.bound", () => Fraction(m => (double?)m.Bound), null,
            "The stated bound on the real-time relative error of the measure's kind (0 for exact kinds).");
        meter.CreateObservableGauge("lambda.accuracy.topk_misses", () => Whole(m => m.TopKMisses), "{item}",
            "Items of the exact top-k absent from the real-time top-k, summed over the buckets of the last accuracy report (0 for other kinds).");
    }

    /// <summary>Makes <paramref name="report"/> the last report of its view.</summary>
    public void Record(AccuracyReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        foreach (var m in report.Measures)
        {
            _latest[(report.View, m.Measure)] = m;
        }
    }

    private IEnumerable<Measurement<long>> Whole(Func<MeasureAccuracy, long> value) =>
        _latest.Select(kv => new Measurement<long>(value(kv.Value), Tags(kv.Key.View, kv.Value)));

    private IEnumerable<Measurement<double>> Fraction(Func<MeasureAccuracy, double?> value) =>
        _latest.Where(kv => value(kv.Value) is not null).Select(kv => new Measurement<double>(value(kv.Value)!.Value, Tags(kv.Key.View, kv.Value)));

    private static KeyValuePair<string, object?>[] Tags(string view, MeasureAccuracy m) =>
    [
        new("view", view), new("measure", m.Measure), new("kind", m.Kind), new("exact", m.Exact ? "true" : "false"),
    ];
}
