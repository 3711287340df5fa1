using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LambdaPlatform.Speed.Views;

/// <summary>
/// The most recent eventIds, for duplicate removal within a bounded window: it remembers at least the last
/// <see cref="Capacity"/> ids added and at most twice as many. Two generations of open-addressing tables of 16-byte
/// ids (linear probing, load at most one half): ids go into the current generation; when it holds
/// <see cref="Capacity"/> ids it becomes the previous one and the oldest generation is cleared and reused. A lookup
/// probes both. No allocation after construction, no per-id object, no queue (the old HashSet plus FIFO queue cost
/// as much as the aggregation itself). Memory: 2 × 2 × capacity × 16 bytes (64 MB for the default million). Not
/// thread-safe.
/// </summary>
public sealed class DedupeWindow
{
    private Generation _current;
    private Generation _previous;

    /// <summary>Creates a window remembering at least <paramref name="capacity"/> ids.</summary>
    public DedupeWindow(int capacity)
    {
        Capacity = capacity is > 0 and <= 1 << 28 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the dedupe window must hold between 1 and 2^28 ids");
        _current = new Generation(capacity);
        _previous = new Generation(capacity);
    }

    /// <summary>How many of the most recent ids are remembered at least.</summary>
    public int Capacity { get; }

    /// <summary>True when <paramref name="id"/> is in the window.</summary>
    public bool Contains(Guid id) => _current.Contains(id) || _previous.Contains(id);

    /// <summary>Remembers <paramref name="id"/>; when the current generation is full, the oldest one is forgotten.</summary>
    public void Add(Guid id)
    {
        if (!Contains(id))
        {
            AddUnseen(id);
        }
    }

    /// <summary>Remembers an id the caller knows is not in the window (saves the lookup of <see cref="Add"/>).</summary>
    public void AddUnseen(Guid id)
    {
        if (_current.Count == Capacity)
        {
            (_previous, _current) = (_current, _previous);
            _current.Clear();
        }

        _current.Add(id);
    }

    /// <summary>One open-addressing table of at most capacity ids in 2^k ≥ 2 × capacity slots.</summary>
    private sealed class Generation
    {
        private readonly (ulong Low, ulong High)[] _slots;
        private readonly int _mask;
        private bool _hasEmptyId;

        public Generation(int capacity)
        {
            var size = (int)Math.Min(1L << 30, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity * 2));
            _slots = new (ulong, ulong)[size];
            _mask = size - 1;
        }

        public int Count { get; private set; }

        public bool Contains(Guid id)
        {
            var (low, high) = Split(id);
            if ((low | high) == 0)
            {
                return _hasEmptyId; // (0, 0) marks a free slot, so the all-zero id is kept aside
            }

            for (var i = Slot(low, high); ; i = (i + 1) & _mask)
            {
                ref var slot = ref _slots[i];
                if (slot.Low == low && slot.High == high)
                {
                    return true;
                }

                if ((slot.Low | slot.High) == 0)
                {
                    return false;
                }
            }
        }

        public void Add(Guid id)
        {
            var (low, high) = Split(id);
            Count++;
            if ((low | high) == 0)
            {
                _hasEmptyId = true;
                return;
            }

            var i = Slot(low, high);
            while ((_slots[i].Low | _slots[i].High) != 0)
            {
                i = (i + 1) & _mask;
            }

            _slots[i] = (low, high);
        }

        public void Clear()
        {
            Array.Clear(_slots);
            Count = 0;
            _hasEmptyId = false;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (ulong Low, ulong High) Split(Guid id)
        {
            var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<Guid>(in id));
            return (MemoryMarshal.Read<ulong>(bytes), MemoryMarshal.Read<ulong>(bytes[8..]));
        }

        /// <summary>A well-mixed slot even for ids that are not random (sequential UUIDs, made-up ids).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int Slot(ulong low, ulong high)
        {
            var h = (low ^ (high * 0x9E3779B97F4A7C15UL)) * 0xBF58476D1CE4E5B9UL;
            return (int)((h ^ (h >> 31)) & (ulong)_mask);
        }
    }
}
