namespace LambdaPlatform.Chaos.Verification;

/// <summary>
/// A set of Kafka (partition, offset) positions, one bit per offset (offsets of a partition are dense from 0), so that
/// tens of millions of acknowledged offsets fit in a few megabytes. Thread-safe.
/// </summary>
public sealed class OffsetSet
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<int, List<ulong>> _words = [];
    private long _count;

    /// <summary>Positions in the set.</summary>
    public long Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Adds a position; false when it was already there.</summary>
    public bool Add(int partition, long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        lock (_lock)
        {
            if (!_words.TryGetValue(partition, out var words))
            {
                _words[partition] = words = [];
            }

            var index = checked((int)(offset >> 6));
            while (words.Count <= index)
            {
                words.Add(0);
            }

            var bit = 1UL << (int)(offset & 63);
            if ((words[index] & bit) != 0)
            {
                return false;
            }

            words[index] |= bit;
            _count++;
            return true;
        }
    }

    /// <summary>Whether a position is in the set.</summary>
    public bool Contains(int partition, long offset)
    {
        lock (_lock)
        {
            return offset >= 0 && _words.TryGetValue(partition, out var words) && (offset >> 6) < words.Count && (words[(int)(offset >> 6)] & (1UL << (int)(offset & 63))) != 0;
        }
    }

    /// <summary>A copy of the set.</summary>
    public OffsetSet Snapshot()
    {
        var copy = new OffsetSet();
        lock (_lock)
        {
            foreach (var (partition, words) in _words)
            {
                copy._words[partition] = [.. words];
            }

            copy._count = _count;
        }

        return copy;
    }

    /// <summary>Every position, by partition and offset (of a snapshot taken when enumeration starts).</summary>
    public IEnumerable<(int Partition, long Offset)> Positions()
    {
        List<(int, ulong[])> words;
        lock (_lock)
        {
            words = [.. _words.Select(w => (w.Key, w.Value.ToArray()))];
        }

        foreach (var (partition, bits) in words)
        {
            for (var i = 0; i < bits.Length; i++)
            {
                var w = bits[i];
                while (w != 0)
                {
                    var b = System.Numerics.BitOperations.TrailingZeroCount(w);
                    yield return (partition, ((long)i << 6) + b);
                    w &= w - 1;
                }
            }
        }
    }
}
