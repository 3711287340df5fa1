using System.Buffers;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// A write-only stream that keeps what is written in segments rented from the shared pool (no large contiguous
/// array, no copying as it grows) until it is sent with <see cref="WriteToAsync"/>, as often as needed.
/// </summary>
/// <remarks>Not thread-safe. Disposing returns the segments.</remarks>
internal sealed class PooledBufferStream : Stream
{
    private const int SegmentSize = 1 << 18;
    private readonly List<byte[]> segments = [];
    private int lastUsed = SegmentSize;
    private long length;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => length;

    public override long Position
    {
        get => length;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            if (lastUsed == SegmentSize)
            {
                segments.Add(ArrayPool<byte>.Shared.Rent(SegmentSize));
                lastUsed = 0;
            }

            var count = Math.Min(buffer.Length, SegmentSize - lastUsed);
            buffer[..count].CopyTo(segments[^1].AsSpan(lastUsed));
            lastUsed += count;
            length += count;
            buffer = buffer[count..];
        }
    }

    /// <summary>Writes everything written so far to <paramref name="destination"/>, from the start.</summary>
    public async Task WriteToAsync(Stream destination, CancellationToken cancellationToken)
    {
        for (var i = 0; i < segments.Count; i++)
        {
            var used = i == segments.Count - 1 ? lastUsed : SegmentSize;
            await destination.WriteAsync(segments[i].AsMemory(0, used), cancellationToken);
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var segment in segments)
            {
                ArrayPool<byte>.Shared.Return(segment);
            }

            segments.Clear();
            lastUsed = SegmentSize;
            length = 0;
        }

        base.Dispose(disposing);
    }
}
