namespace LambdaPlatform.Speed.Views;

/// <summary>The most recent eventIds (first in, first out), for duplicate removal within a bounded window. Not thread-safe.</summary>
public sealed class DedupeWindow(int capacity)
{
    private readonly HashSet<Guid> _ids = new(Math.Min(capacity, 1 << 16));
    private readonly Queue<Guid> _order = new(Math.Min(capacity, 1 << 16));

    /// <summary>How many ids are remembered.</summary>
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the dedupe window must hold at least one id");

    /// <summary>True when <paramref name="id"/> is in the window.</summary>
    public bool Contains(Guid id) => _ids.Contains(id);

    /// <summary>Remembers <paramref name="id"/>, forgetting the oldest when full.</summary>
    public void Add(Guid id)
    {
        if (!_ids.Add(id))
        {
            return;
        }

        _order.Enqueue(id);
        if (_order.Count > Capacity)
        {
            _ids.Remove(_order.Dequeue());
        }
    }
}
