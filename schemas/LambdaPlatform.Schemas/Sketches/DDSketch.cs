using System.Globalization;

namespace LambdaPlatform.Schemas.Sketches;

/// <summary>
/// DDSketch quantile sketch with relative accuracy 1%: every quantile it returns is within ±1% of the
/// value of the true rank (Masson, Rim, Lee, VLDB 2019). A value v &gt; 0 falls in bucket
/// ⌈log_γ v⌉ with γ = 1.01/0.99; buckets are stored as (key, count) pairs with keys offset by
/// <see cref="KeyOffset"/> (negative values mirror it, zero is key 0), so sketches merge by adding counts
/// per key — in C# and in ClickHouse SQL (<c>sumMap(keys, counts)</c>, see <see cref="SqlValueAtRank"/>).
/// Quantiles use the nearest-rank rule of <see cref="Views.Measures.QuantileMeasure.NearestRank"/> (the ⌈q·n⌉-th
/// smallest value). Not thread-safe.
/// </summary>
public sealed class DDSketch
{
    /// <summary>Relative accuracy α.</summary>
    public const double RelativeAccuracy = 0.01;

    /// <summary>Offset added to positive keys so that they stay away from zero and negatives.</summary>
    public const int KeyOffset = 1 << 20;

    /// <summary>Values whose magnitude is below this count as zero.</summary>
    public const double MinIndexable = 1e-9;

    /// <summary>γ = (1 + α) / (1 − α).</summary>
    public static readonly double Gamma = (1 + RelativeAccuracy) / (1 - RelativeAccuracy);

    private static readonly double LogGamma = Math.Log(Gamma);

    private readonly Dictionary<int, ulong> _counts = [];

    /// <summary>Number of values added.</summary>
    public ulong Count { get; private set; }

    /// <summary>The (key, count) pairs in ascending key order.</summary>
    public IEnumerable<KeyValuePair<int, ulong>> Buckets => _counts.OrderBy(kv => kv.Key);

    /// <summary>Adds a value.</summary>
    public void Add(double value) => Add(Key(value), 1);

    /// <summary>Adds <paramref name="count"/> values to bucket <paramref name="key"/> (used when merging).</summary>
    public void Add(int key, ulong count)
    {
        ref var slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, key, out _);
        slot += count;
        Count += count;
    }

    /// <summary>Merges another sketch into this one.</summary>
    public void Merge(DDSketch other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (key, count) in other._counts)
        {
            Add(key, count);
        }
    }

    /// <summary>The q-quantile by the nearest-rank rule, or null when empty.</summary>
    public double? Quantile(double q) => Count == 0 ? null : ValueAtRank(Views.Measures.QuantileMeasure.NearestRank(q, Count));

    /// <summary>The representative value of the <paramref name="rank"/>-th smallest value (1-based; clamped to 1..Count), or null when empty.</summary>
    public double? ValueAtRank(ulong rank)
    {
        if (Count == 0)
        {
            return null;
        }

        ulong cumulative = 0;
        var last = 0;
        foreach (var (key, count) in Buckets)
        {
            cumulative += count;
            last = key;
            if (cumulative >= rank)
            {
                return Value(key);
            }
        }

        return Value(last);
    }

    /// <summary>The bucket key of a value.</summary>
    public static int Key(double value)
    {
        if (double.IsNaN(value))
        {
            throw new ArgumentException("NaN cannot be added to a sketch", nameof(value));
        }

        var magnitude = Math.Abs(value);
        if (magnitude < MinIndexable)
        {
            return 0;
        }

        var key = (int)Math.Ceiling(Math.Log(Math.Min(magnitude, 1e300)) / LogGamma) + KeyOffset;
        return value > 0 ? key : -key;
    }

    /// <summary>The representative value of a bucket key: within α of every value in the bucket.</summary>
    public static double Value(int key) => key switch
    {
        0 => 0,
        > 0 => 2 * Math.Pow(Gamma, key - KeyOffset) / (Gamma + 1),
        _ => -2 * Math.Pow(Gamma, -key - KeyOffset) / (Gamma + 1),
    };

    /// <summary>
    /// ClickHouse SQL (18.16 and later) for <see cref="ValueAtRank"/> of a merged sketch, where <paramref name="merged"/> is a
    /// <c>(keys, counts)</c> tuple such as the alias of <c>sumMap(p99_keys, p99_counts)</c> and <paramref name="rank"/> an
    /// expression of the 1-based rank that may use <c>n</c>, the number of values. NULL when the sketch is empty.
    /// </summary>
    public static string SqlValueAtRank(string merged, Func<string, string> rank)
    {
        ArgumentNullException.ThrowIfNull(rank);
        var gamma = Gamma.ToString("R", CultureInfo.InvariantCulture);
        var offset = KeyOffset.ToString(CultureInfo.InvariantCulture);
        var n = $"arraySum(({merged}).2)";
        // identity(): ClickHouse 18.16 stores a view as `x.1[i]`, which its own parser rejects on restart
        // ("Cannot create table from metadata file"); `identity(x.1)[i]` reads back.
        var key = $"arrayElement(identity(({merged}).1), arrayFirstIndex(c -> c >= {rank(n)}, arrayCumSum(({merged}).2)))";
        var value = $"multiIf(k = 0, 0, k > 0, 2 * pow({gamma}, k - {offset}) / ({gamma} + 1), -2 * pow({gamma}, -k - {offset}) / ({gamma} + 1))";
        return $"if({n} = 0, NULL, arrayElement(arrayMap(k -> {value}, [toInt64({key})]), 1))";
    }
}
