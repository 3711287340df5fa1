using System.Collections.Concurrent;

namespace LambdaPlatform.Serving.Views;

/// <summary>
/// What the serving layer knows about how fresh each view is in this process: real-time flushes (with the
/// bucket range they touched) and watermark moves, reported by the speed layer and the batch layer. The
/// query cache uses it to drop answers a flush or a new W made stale. Thread-safe.
/// </summary>
public sealed class ViewFreshness(TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, ViewChanges> _changes = new(StringComparer.Ordinal);
    private DateTime? _lastSpeedFlush;

    /// <summary>Seconds since the speed layer's last durable flush in this process, or null when it has not flushed.</summary>
    public double? SpeedLagSeconds => _lastSpeedFlush is { } at ? Math.Max(0, (clock.GetUtcNow().UtcDateTime - at).TotalSeconds) : null;

    /// <summary>Records that a real-time flush of <paramref name="view"/> touched buckets in [<paramref name="minBucket"/>, <paramref name="maxBucket"/>].</summary>
    public void RealtimeFlushed(string view, DateTime minBucket, DateTime maxBucket)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        _lastSpeedFlush = now;
        _changes.GetOrAdd(view, _ => new ViewChanges()).Add(now, minBucket, maxBucket);
    }

    /// <summary>Records that the speed layer flushed (even with no view rows).</summary>
    public void SpeedFlushed() => _lastSpeedFlush = clock.GetUtcNow().UtcDateTime;

    /// <summary>Records that <paramref name="view"/>'s watermark moved: every cached answer for it is stale.</summary>
    public void WatermarkMoved(string view) =>
        _changes.GetOrAdd(view, _ => new ViewChanges()).Add(clock.GetUtcNow().UtcDateTime, DateTime.MinValue, DateTime.MaxValue);

    /// <summary>True when something changed buckets of [<paramref name="from"/>, <paramref name="to"/>) of the view after <paramref name="since"/>.</summary>
    public bool ChangedSince(string view, DateTime since, DateTime from, DateTime to) =>
        _changes.TryGetValue(view, out var changes) && changes.Overlaps(since, from, to);

    private sealed class ViewChanges
    {
        private const int Keep = 256;
        private readonly Queue<(DateTime At, DateTime Min, DateTime Max)> _recent = new();
        private readonly Lock _lock = new();

        public void Add(DateTime at, DateTime min, DateTime max)
        {
            lock (_lock)
            {
                _recent.Enqueue((at, min, max));
                while (_recent.Count > Keep)
                {
                    _recent.Dequeue();
                }
            }
        }

        public bool Overlaps(DateTime since, DateTime from, DateTime to)
        {
            lock (_lock)
            {
                if (_recent.Count == Keep && _recent.Peek().At >= since)
                {
                    return true; // history no longer reaches back far enough to prove nothing changed
                }

                foreach (var (at, min, max) in _recent)
                {
                    if (at >= since && min < to && max >= from)
                    {
                        return true;
                    }
                }

                return false;
            }
        }
    }
}
