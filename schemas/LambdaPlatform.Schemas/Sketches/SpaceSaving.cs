namespace LambdaPlatform.Schemas.Sketches;

/// <summary>
/// Space-Saving heavy hitters (Metwally, Agrawal, El Abbadi 2005) with capacity c: keeps at most c
/// counters; any value whose true count exceeds n/c is guaranteed to be kept, and each kept count
/// over-estimates the true count by at most n/c. Summaries merge by adding counts per value (in C# and
/// in ClickHouse SQL by summing counts per item hash, see ViewSql), then keeping the largest. Not thread-safe.
/// </summary>
public sealed class SpaceSaving(int capacity)
{
    private readonly Dictionary<string, ulong> _counts = new(StringComparer.Ordinal);

    /// <summary>Most counters kept.</summary>
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must be positive");

    /// <summary>Number of values added.</summary>
    public ulong Count { get; private set; }

    /// <summary>Adds one occurrence of <paramref name="value"/>.</summary>
    public void Add(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Count++;
        if (_counts.TryGetValue(value, out var c))
        {
            _counts[value] = c + 1;
            return;
        }

        if (_counts.Count < Capacity)
        {
            _counts[value] = 1;
            return;
        }

        // Replace the smallest counter; the newcomer inherits its count (the over-estimate bound).
        var (minValue, minCount) = (string.Empty, ulong.MaxValue);
        foreach (var (v, count) in _counts)
        {
            if (count < minCount)
            {
                (minValue, minCount) = (v, count);
            }
        }

        _counts.Remove(minValue);
        _counts[value] = minCount + 1;
    }

    /// <summary>
    /// Merges another summary: counts add up per value, then only the <see cref="Capacity"/> largest counters stay
    /// (exact while the two together hold at most <see cref="Capacity"/> values).
    /// </summary>
    public void Merge(SpaceSaving other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (value, count) in other._counts)
        {
            _counts[value] = _counts.GetValueOrDefault(value) + count;
        }

        Count += other.Count;
        if (_counts.Count > Capacity)
        {
            foreach (var (value, _) in _counts.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(_counts.Count - Capacity).ToList())
            {
                _counts.Remove(value);
            }
        }
    }

    /// <summary>The counters, largest first (ties by value).</summary>
    public IReadOnlyList<KeyValuePair<string, ulong>> Top(int k) =>
        [.. _counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(k)];

    /// <summary>Every counter kept.</summary>
    public IReadOnlyDictionary<string, ulong> Counters => _counts;
}
