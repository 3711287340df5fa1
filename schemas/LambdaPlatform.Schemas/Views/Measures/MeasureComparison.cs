namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>
/// How far one bucket's real-time value of a measure is from the exact batch value of the same bucket and dimension
/// values (see <see cref="Measure.Compare"/>); the accuracy report adds these up per measure.
/// </summary>
/// <param name="OutOfBound">
/// True when the real-time value is further from the exact one than the kind promises when nothing fails: any difference
/// for count, min and max; more than floating-point rounding for sum (<see cref="SumMeasure.Rounding"/>); more than
/// <see cref="Measure.RealtimeRelativeError"/> for distinct and quantile. Never for top-k, whose misses and count
/// differences are reported instead (its summary is exact only while a bucket's values fit it).
/// </param>
/// <param name="RelativeError">
/// |real-time − exact| / |exact| of a one-number value: 0 when both sides have no value, 1 when only one side has one or
/// the exact value is 0 and the real-time one is not; null for values that are not one number (top-k).
/// </param>
/// <param name="Misses">Top-k: items of the exact top-k that are absent from the real-time top-k; 0 for other kinds.</param>
/// <param name="CountDifference">Top-k: over the items of the exact top-k also in the real-time one, the sum of |real-time count − exact count|; 0 for other kinds.</param>
public readonly record struct MeasureComparison(bool OutOfBound, double? RelativeError, int Misses = 0, ulong CountDifference = 0);
