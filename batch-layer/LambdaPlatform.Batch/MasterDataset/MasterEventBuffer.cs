using System.Text;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Batch.Master;

/// <summary>
/// Rows of the master dataset held column by column, ready for <see cref="MasterParquet.WriteAsync"/>: the
/// archiver's buffer for one file. Payloads are copied (as UTF-16) into pooled chunks, so the Kafka message
/// buffers an event was decoded from need not be kept. Not thread-safe.
/// </summary>
public sealed class MasterEventBuffer
{
    private const int ChunkChars = 1 << 18;
    private const int LargeChars = ChunkChars / 8;

    private readonly List<char[]> _chunks = [];
    private int _chunk;
    private int _chunkUsed;

    internal Guid[] EventIds = [];
    internal ReadOnlyMemory<char>[] EventTypes = [];
    internal DateTime[] Timestamps = [];
    internal ReadOnlyMemory<char>[] UserIds = [];
    internal ReadOnlyMemory<char>[] Sources = [];
    internal ReadOnlyMemory<char>[] Versions = [];
    internal ReadOnlyMemory<char>[] Payloads = [];
    internal int[] Partitions = [];
    internal long[] Offsets = [];

    /// <summary>Creates an empty buffer with room for <paramref name="capacity"/> rows (it grows as needed).</summary>
    public MasterEventBuffer(int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Resize(capacity);
    }

    /// <summary>Number of rows.</summary>
    public int Count { get; private set; }

    /// <summary>Lowest Kafka offset among the rows, or <see cref="long.MaxValue"/> when empty.</summary>
    public long MinOffset { get; private set; } = long.MaxValue;

    /// <summary>Highest Kafka offset among the rows, or <see cref="long.MinValue"/> when empty.</summary>
    public long MaxOffset { get; private set; } = long.MinValue;

    /// <summary>Appends a decoded event read from Kafka at (<paramref name="partition"/>, <paramref name="offset"/>).</summary>
    public void Add(DecodedEvent decoded, int partition, long offset)
    {
        ArgumentNullException.ThrowIfNull(decoded);
        var i = Reserve();
        EventIds[i] = decoded.EventId;
        EventTypes[i] = decoded.EventType.AsMemory();
        Timestamps[i] = decoded.Timestamp;
        UserIds[i] = decoded.UserId.AsMemory();
        Sources[i] = decoded.Source.AsMemory();
        Versions[i] = decoded.Version.AsMemory();
        Payloads[i] = CopyUtf8(decoded.Payload.Span);
        Partitions[i] = partition;
        Offsets[i] = offset;
        Track(offset);
    }

    /// <summary>Appends one row given field by field (<paramref name="payload"/> is copied).</summary>
    public void Add(Guid eventId, string eventType, DateTime timestamp, string userId, string source, string version,
        ReadOnlySpan<char> payload, int partition, long offset)
    {
        var i = Reserve();
        EventIds[i] = eventId;
        EventTypes[i] = eventType.AsMemory();
        Timestamps[i] = timestamp;
        UserIds[i] = userId.AsMemory();
        Sources[i] = source.AsMemory();
        Versions[i] = version.AsMemory();
        Payloads[i] = CopyChars(payload);
        Partitions[i] = partition;
        Offsets[i] = offset;
        Track(offset);
    }

    /// <summary>Removes every row; keeps the allocated capacity and payload chunks for reuse.</summary>
    public void Clear()
    {
        // Drop references so strings of past events can be collected.
        Array.Clear(EventTypes, 0, Count);
        Array.Clear(UserIds, 0, Count);
        Array.Clear(Sources, 0, Count);
        Array.Clear(Versions, 0, Count);
        Array.Clear(Payloads, 0, Count);
        Count = 0;
        _chunk = 0;
        _chunkUsed = 0;
        MinOffset = long.MaxValue;
        MaxOffset = long.MinValue;
    }

    /// <summary>
    /// Appends rows read from a file, column by column. Strings are copied into this buffer's own chunks: a reader
    /// may hand out memory it reuses.
    /// </summary>
    internal void AppendColumns(Guid[] ids, ReadOnlyMemory<char>[] types, DateTime[] timestamps, ReadOnlyMemory<char>[] users,
        ReadOnlyMemory<char>[] sources, ReadOnlyMemory<char>[] versions, ReadOnlyMemory<char>[] payloads, int[] partitions, long[] offsets, int rows)
    {
        if (Count + rows > EventIds.Length)
        {
            Resize(Math.Max(Count + rows, EventIds.Length * 2));
        }

        ids.AsSpan(0, rows).CopyTo(EventIds.AsSpan(Count));
        timestamps.AsSpan(0, rows).CopyTo(Timestamps.AsSpan(Count));
        partitions.AsSpan(0, rows).CopyTo(Partitions.AsSpan(Count));
        offsets.AsSpan(0, rows).CopyTo(Offsets.AsSpan(Count));
        for (var i = 0; i < rows; i++)
        {
            var j = Count + i;
            EventTypes[j] = CopyChars(types[i].Span);
            UserIds[j] = CopyChars(users[i].Span);
            Sources[j] = CopyChars(sources[i].Span);
            Versions[j] = CopyChars(versions[i].Span);
            Payloads[j] = CopyChars(payloads[i].Span);
            Track(offsets[i]);
        }

        Count += rows;
    }

    private void Track(long offset)
    {
        if (offset < MinOffset)
        {
            MinOffset = offset;
        }

        if (offset > MaxOffset)
        {
            MaxOffset = offset;
        }
    }

    private int Reserve()
    {
        if (Count == EventIds.Length)
        {
            Resize(Math.Max(16, EventIds.Length * 2));
        }

        return Count++;
    }

    private void Resize(int capacity)
    {
        Array.Resize(ref EventIds, capacity);
        Array.Resize(ref EventTypes, capacity);
        Array.Resize(ref Timestamps, capacity);
        Array.Resize(ref UserIds, capacity);
        Array.Resize(ref Sources, capacity);
        Array.Resize(ref Versions, capacity);
        Array.Resize(ref Payloads, capacity);
        Array.Resize(ref Partitions, capacity);
        Array.Resize(ref Offsets, capacity);
    }

    private ReadOnlyMemory<char> CopyUtf8(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > LargeChars)
        {
            return Encoding.UTF8.GetString(utf8).AsMemory(); // A rare large payload gets its own string.
        }

        // UTF-16 never needs more chars than the UTF-8 has bytes.
        var chunk = ChunkWithRoom(utf8.Length);
        var written = Encoding.UTF8.GetChars(utf8, chunk.AsSpan(_chunkUsed));
        var result = chunk.AsMemory(_chunkUsed, written);
        _chunkUsed += written;
        return result;
    }

    private ReadOnlyMemory<char> CopyChars(ReadOnlySpan<char> chars)
    {
        if (chars.Length > LargeChars)
        {
            return chars.ToString().AsMemory();
        }

        var chunk = ChunkWithRoom(chars.Length);
        chars.CopyTo(chunk.AsSpan(_chunkUsed));
        var result = chunk.AsMemory(_chunkUsed, chars.Length);
        _chunkUsed += chars.Length;
        return result;
    }

    private char[] ChunkWithRoom(int length)
    {
        if (_chunk < _chunks.Count)
        {
            if (ChunkChars - _chunkUsed >= length)
            {
                return _chunks[_chunk];
            }

            _chunk++;
            _chunkUsed = 0;
        }

        if (_chunk == _chunks.Count)
        {
            _chunks.Add(new char[ChunkChars]);
        }

        return _chunks[_chunk];
    }
}
