namespace LambdaPlatform.Serving.Store;

/// <summary>
/// How far a view's real-time side was from the exact batch side over one day, measured by the batch run that moved W
/// over the day, just before it dropped the day's real-time rows. A "bucket" here is one row of the view: a time bucket
/// with its dimension values; the two sides are compared on the union of their rows (a row one side lacks has that
/// side's value over no events).
/// </summary>
/// <param name="View">The view.</param>
/// <param name="Day">The day (UTC).</param>
/// <param name="ComparedAt">When the comparison ran (UTC, whole seconds).</param>
/// <param name="RealtimeRows">Rows of the real-time side (merged over flushes and instances).</param>
/// <param name="BatchRows">Rows of the batch side.</param>
/// <param name="Measures">One entry per measure of the view, in the view's order.</param>
public sealed record AccuracyReport(string View, DateOnly Day, DateTime ComparedAt, long RealtimeRows, long BatchRows, IReadOnlyList<MeasureAccuracy> Measures)
{
    /// <summary>True when a measure that is exact in real time (count, sum, min, max) differed in some bucket.</summary>
    public bool HasWarning => Measures.Any(m => m.Exact && m.BucketsOutOfBound > 0);
}

/// <summary>One measure's part of an <see cref="AccuracyReport"/>.</summary>
/// <param name="Measure">The measure's name.</param>
/// <param name="Kind">Its kind (<c>count</c>, <c>distinct</c>, …).</param>
/// <param name="Definition">Its definition as the view file writes it.</param>
/// <param name="Exact">True when the kind is exact in real time (its stated bound is 0).</param>
/// <param name="Bound">The stated bound on the real-time relative error (0 for exact kinds).</param>
/// <param name="BucketsCompared">Buckets compared.</param>
/// <param name="BucketsOutOfBound">
/// Buckets whose real-time value is further from the exact one than the kind promises: for exact kinds any difference
/// (sums beyond floating-point rounding), which should never happen; for distinct and quantile an error over the bound.
/// </param>
/// <param name="MaxRelativeError">Largest relative error over the buckets; null for kinds whose value is not one number (top-k) or when nothing was compared.</param>
/// <param name="MeanRelativeError">Mean relative error over the buckets; null like <paramref name="MaxRelativeError"/>.</param>
/// <param name="TopKMisses">Top-k: items of the exact top-k absent from the real-time top-k, summed over the buckets.</param>
/// <param name="TopKCountDifference">Top-k: |real-time − exact| count of the items on both sides, summed over the buckets.</param>
/// <param name="OutOfBoundBuckets">The first <see cref="MaxNamedBuckets"/> buckets out of bound, e.g. <c>2026-10-01 09:00:00 store=berlin</c>.</param>
public sealed record MeasureAccuracy(string Measure, string Kind, string Definition, bool Exact, double Bound, long BucketsCompared, long BucketsOutOfBound,
    double? MaxRelativeError, double? MeanRelativeError, long TopKMisses, ulong TopKCountDifference, IReadOnlyList<string> OutOfBoundBuckets)
{
    /// <summary>How many out-of-bound buckets a report names per measure: 20.</summary>
    public const int MaxNamedBuckets = 20;
}
