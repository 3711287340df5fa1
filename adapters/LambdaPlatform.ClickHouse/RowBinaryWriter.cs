using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// Writes one row of a typed insert (<see cref="IClickHouse.InsertAsync{T}"/>): one <c>Write…</c> call per column, in the
/// insert's column order, with the method of the column's type.
/// </summary>
/// <typeparam name="T">The caller's row type.</typeparam>
/// <param name="writer">The insert's writer; valid only during the call.</param>
/// <param name="row">The row to write.</param>
public delegate void RowWriter<T>(RowBinaryWriter writer, in T row);

/// <summary>
/// The platform's one ClickHouse RowBinary encoder, used by both backends for typed inserts
/// (<see cref="IClickHouse.InsertAsync{T}"/>) and for the boxed <c>object?[]</c> rows of
/// <see cref="IClickHouse.InsertAsync(string, IReadOnlyList{ClickHouseColumn}, IEnumerable{object[]}, CancellationToken)"/>,
/// so both paths produce the same bytes. Values go into a pooled buffer (256 KiB by default) that the insert sends on.
/// </summary>
/// <remarks>
/// <para>
/// The writer knows the insert's columns: each <c>Write…</c> call fills the next column and must be the method of that
/// column's type (<c>WriteUInt16</c> for UInt16, <see cref="WriteDateTime"/> for DateTime and DateTime64(p),
/// <see cref="WriteString(string)"/> or <see cref="WriteUtf8"/> for String, …). A call for another type, too many calls,
/// or a row with too few values throws <see cref="ArgumentException"/> naming the row and column, because a value in
/// the wrong place would not fail in ClickHouse but shift every following byte. For a <c>Nullable(T)</c> column call
/// <see cref="WriteNull"/> or the method of T (the null marker is written for you).
/// </para>
/// <para>Created by the backends only; not thread-safe (one insert, one thread at a time).</para>
/// </remarks>
public sealed class RowBinaryWriter
{
    /// <summary>Default buffer size: 256 KiB.</summary>
    internal const int DefaultBufferSize = 1 << 18;

    private readonly Stream output;
    private readonly RowBinaryColumn[] columns;
    private byte[] buffer;
    private int position;
    private int column;
    private long row;

    /// <summary>Creates a writer of rows of <paramref name="columns"/> to <paramref name="output"/>.</summary>
    /// <param name="output">Where full buffers go (written synchronously: a file, or memory).</param>
    /// <param name="columns">The resolved insert columns.</param>
    /// <param name="bufferSize">Buffer size in bytes, rented from the shared pool until <see cref="Release"/>.</param>
    /// <param name="firstRow">Index of the first row in the whole insert, for error messages.</param>
    internal RowBinaryWriter(Stream output, RowBinaryColumn[] columns, int bufferSize = DefaultBufferSize, long firstRow = 0)
    {
        this.output = output;
        this.columns = columns;
        row = firstRow;
        buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    /// <summary>Writes a String column from UTF-16 text, encoded as UTF-8 straight into the buffer.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null (use <see cref="WriteNull"/> for Nullable(String)).</exception>
    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        WriteString(value.AsSpan());
    }

    /// <summary>Writes a String column from UTF-16 text, encoded as UTF-8 straight into the buffer.</summary>
    public void WriteString(ReadOnlySpan<char> value)
    {
        Begin(RowBinaryKind.String);
        WriteText(value);
    }

    /// <summary>Writes a String column from bytes taken as they are (ClickHouse strings are bytes; pass UTF-8).</summary>
    public void WriteUtf8(ReadOnlySpan<byte> value)
    {
        Begin(RowBinaryKind.String);
        WriteVarInt((ulong)value.Length);
        WriteBytes(value);
    }

    /// <summary>Writes an Int8 column.</summary>
    public void WriteInt8(sbyte value)
    {
        Begin(RowBinaryKind.Int8);
        Take(1)[0] = unchecked((byte)value);
    }

    /// <summary>Writes a UInt8 column.</summary>
    public void WriteUInt8(byte value)
    {
        Begin(RowBinaryKind.UInt8);
        Take(1)[0] = value;
    }

    /// <summary>Writes an Int16 column (little-endian, as every number).</summary>
    public void WriteInt16(short value)
    {
        Begin(RowBinaryKind.Int16);
        BinaryPrimitives.WriteInt16LittleEndian(Take(2), value);
    }

    /// <summary>Writes a UInt16 column.</summary>
    public void WriteUInt16(ushort value)
    {
        Begin(RowBinaryKind.UInt16);
        BinaryPrimitives.WriteUInt16LittleEndian(Take(2), value);
    }

    /// <summary>Writes an Int32 column.</summary>
    public void WriteInt32(int value)
    {
        Begin(RowBinaryKind.Int32);
        BinaryPrimitives.WriteInt32LittleEndian(Take(4), value);
    }

    /// <summary>Writes a UInt32 column.</summary>
    public void WriteUInt32(uint value)
    {
        Begin(RowBinaryKind.UInt32);
        BinaryPrimitives.WriteUInt32LittleEndian(Take(4), value);
    }

    /// <summary>Writes an Int64 column.</summary>
    public void WriteInt64(long value)
    {
        Begin(RowBinaryKind.Int64);
        BinaryPrimitives.WriteInt64LittleEndian(Take(8), value);
    }

    /// <summary>Writes a UInt64 column.</summary>
    public void WriteUInt64(ulong value)
    {
        Begin(RowBinaryKind.UInt64);
        BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);
    }

    /// <summary>Writes a Float32 column.</summary>
    public void WriteFloat32(float value)
    {
        Begin(RowBinaryKind.Float32);
        BinaryPrimitives.WriteSingleLittleEndian(Take(4), value);
    }

    /// <summary>Writes a Float64 column.</summary>
    public void WriteFloat64(double value)
    {
        Begin(RowBinaryKind.Float64);
        BinaryPrimitives.WriteDoubleLittleEndian(Take(8), value);
    }

    /// <summary>
    /// Writes a DateTime column (whole seconds since the Unix epoch as UInt32; sub-second digits are cut off) or a
    /// DateTime64(p) column (Int64 units of 10^-p s, rounded down). The value is taken as UTC: Local is converted,
    /// Unspecified is read as UTC.
    /// </summary>
    /// <exception cref="ArgumentException">For DateTime: the value is outside 1970-01-01..2106-02-07.</exception>
    public void WriteDateTime(DateTime value)
    {
        var target = Begin(RowBinaryKind.DateTime);
        var utc = RowBinary.ToUtc(value);
        if (target.Kind == RowBinaryKind.DateTime64)
        {
            BinaryPrimitives.WriteInt64LittleEndian(Take(8), ToDateTime64(utc, target.Precision));
            return;
        }

        RowBinary.CheckDateTime(target, utc, row);
        BinaryPrimitives.WriteUInt32LittleEndian(Take(4), (uint)((utc.Ticks - RowBinary.EpochTicks) / TimeSpan.TicksPerSecond));
    }

    /// <summary>Writes a Date column (days since the Unix epoch as UInt16).</summary>
    /// <exception cref="ArgumentException">The value is outside Date's range 1970-01-01..2149-06-06.</exception>
    public void WriteDate(DateOnly value)
    {
        RowBinary.CheckDate(Begin(RowBinaryKind.Date), value, row);
        BinaryPrimitives.WriteUInt16LittleEndian(Take(2), (ushort)(value.DayNumber - RowBinary.EpochDayNumber));
    }

    /// <summary>Writes a UUID column.</summary>
    public void WriteUuid(Guid value)
    {
        Begin(RowBinaryKind.Uuid);

        // ClickHouse keeps a UUID as two UInt64 (high half first), each little-endian.
        Span<byte> bigEndian = stackalloc byte[16];
        value.TryWriteBytes(bigEndian, bigEndian: true, out _);
        var target = Take(16);
        BinaryPrimitives.WriteUInt64LittleEndian(target, BinaryPrimitives.ReadUInt64BigEndian(bigEndian));
        BinaryPrimitives.WriteUInt64LittleEndian(target[8..], BinaryPrimitives.ReadUInt64BigEndian(bigEndian[8..]));
    }

    /// <summary>Writes NULL into a Nullable(T) column.</summary>
    /// <exception cref="ArgumentException">The column is not Nullable.</exception>
    public void WriteNull()
    {
        var target = Next();
        if (!target.IsNullable)
        {
            throw RowBinary.RowError($"Row {row}, column '{target.Name}' ({target.Type}) is null but the column is not Nullable.", "write");
        }

        Take(1)[0] = 1;
    }

    /// <summary>
    /// Writes an Array(T) column of numbers: <typeparamref name="T"/> is the CLR type of the element type (<c>byte</c> for
    /// Array(UInt8), <c>int</c> for Array(Int32), <c>ulong</c> for Array(UInt64), <c>double</c> for Array(Float64), …).
    /// The elements are copied in bulk.
    /// </summary>
    /// <exception cref="ArgumentException">The column is not an array of that element type.</exception>
    public void WriteArray<T>(ReadOnlySpan<T> values)
        where T : unmanaged
    {
        Begin(ElementKind<T>.Kind ?? throw new ArgumentException($"Array elements of type {typeof(T).Name} are not in the insert contract.", nameof(values)), array: true);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("RowBinary arrays are written on little-endian machines only.");
        }

        WriteVarInt((ulong)values.Length);
        WriteBytes(MemoryMarshal.AsBytes(values));
    }

    /// <summary>Writes an Array(String) column, each element encoded as UTF-8.</summary>
    /// <exception cref="ArgumentException">The column is not Array(String), or an element is null.</exception>
    public void WriteArray(ReadOnlySpan<string> values)
    {
        var target = Begin(RowBinaryKind.String, array: true);
        WriteVarInt((ulong)values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            WriteText(values[i] ?? throw new ArgumentException($"Row {row}, column '{target.Name}' ({target.Type}): element {i} is null; array elements cannot be null.", nameof(values)));
        }
    }

    /// <summary>
    /// Encodes one boxed row already passed through <see cref="RowBinary.Check"/>, through the same methods as a typed row,
    /// and ends it.
    /// </summary>
    internal void WriteRow(object?[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            var value = values[i];
            if (value is null)
            {
                WriteNull();
                continue;
            }

            switch (value)
            {
                case string v:
                    WriteString(v);
                    break;
                case sbyte v:
                    WriteInt8(v);
                    break;
                case byte v:
                    WriteUInt8(v);
                    break;
                case short v:
                    WriteInt16(v);
                    break;
                case ushort v:
                    WriteUInt16(v);
                    break;
                case int v:
                    WriteInt32(v);
                    break;
                case uint v:
                    WriteUInt32(v);
                    break;
                case long v:
                    WriteInt64(v);
                    break;
                case ulong v:
                    WriteUInt64(v);
                    break;
                case float v:
                    WriteFloat32(v);
                    break;
                case double v:
                    WriteFloat64(v);
                    break;
                case DateTime v:
                    WriteDateTime(v);
                    break;
                case DateOnly v:
                    WriteDate(v);
                    break;
                case Guid v:
                    WriteUuid(v);
                    break;
                case Array v:
                    WriteArray(v);
                    break;
                default:
                    throw new InvalidOperationException(value.GetType().Name);
            }
        }

        EndRow();
    }

    /// <summary>
    /// A boxed array, by the kind of its column rather than its runtime type: the runtime lets a <c>ulong[]</c> pass as
    /// <c>long[]</c> (and <c>byte[]</c> as <c>sbyte[]</c>, …), and <see cref="RowBinary.Check"/> already made the type exact.
    /// </summary>
    private void WriteArray(Array values)
    {
        switch (columns[column].Kind)
        {
            case RowBinaryKind.String:
                WriteArray((string[])values);
                break;
            case RowBinaryKind.Int8:
                WriteArray<sbyte>((sbyte[])values);
                break;
            case RowBinaryKind.UInt8:
                WriteArray<byte>((byte[])values);
                break;
            case RowBinaryKind.Int16:
                WriteArray<short>((short[])values);
                break;
            case RowBinaryKind.UInt16:
                WriteArray<ushort>((ushort[])values);
                break;
            case RowBinaryKind.Int32:
                WriteArray<int>((int[])values);
                break;
            case RowBinaryKind.UInt32:
                WriteArray<uint>((uint[])values);
                break;
            case RowBinaryKind.Int64:
                WriteArray<long>((long[])values);
                break;
            case RowBinaryKind.UInt64:
                WriteArray<ulong>((ulong[])values);
                break;
            case RowBinaryKind.Float32:
                WriteArray<float>((float[])values);
                break;
            case RowBinaryKind.Float64:
                WriteArray<double>((double[])values);
                break;
            default:
                throw new InvalidOperationException(columns[column].Type);
        }
    }

    /// <summary>Ends the current row: checks that every column got its value.</summary>
    /// <exception cref="ArgumentException">The row writer wrote fewer values than the insert has columns.</exception>
    internal void EndRow()
    {
        if (column != columns.Length)
        {
            throw RowBinary.RowError($"Row {row} has {column} values; the insert has {columns.Length} columns ({string.Join(", ", columns.Select(c => c.Name))}).", "write");
        }

        column = 0;
        row++;
    }

    /// <summary>Writes the buffered bytes to the output stream.</summary>
    internal void Flush()
    {
        if (position > 0)
        {
            output.Write(buffer, 0, position);
            position = 0;
        }
    }

    /// <summary>Returns the buffer to the pool; the writer is unusable afterwards. Idempotent.</summary>
    internal void Release()
    {
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = [];
        }
    }

    /// <summary>Moves to the next column, which must be of <paramref name="kind"/>, and writes its not-null marker when Nullable.</summary>
    private RowBinaryColumn Begin(RowBinaryKind kind, bool array = false)
    {
        var target = Next();
        var matches = target.IsArray == array
            && (target.Kind == kind || (kind == RowBinaryKind.DateTime && target.Kind == RowBinaryKind.DateTime64));
        if (!matches)
        {
            throw RowBinary.RowError($"Row {row}, column '{target.Name}' ({target.Type}) got a value written as {(array ? $"Array({kind})" : kind.ToString())}: a row writer must write the columns in the insert's order, each with the method of its type.", "write");
        }

        if (target.IsNullable)
        {
            Take(1)[0] = 0;
        }

        return target;
    }

    private RowBinaryColumn Next()
    {
        if (column == columns.Length)
        {
            throw RowBinary.RowError($"Row {row} has more values than the insert's {columns.Length} columns.", "write");
        }

        return columns[column++];
    }

    private static long ToDateTime64(DateTime utc, int precision)
    {
        var ticks = utc.Ticks - RowBinary.EpochTicks; // 100 ns units
        return precision <= 7
            ? FloorDiv(ticks, Pow10(7 - precision))
            : checked(ticks * Pow10(precision - 7));
    }

    private static long FloorDiv(long value, long divisor)
    {
        var quotient = value / divisor;
        return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient;
    }

    private static long Pow10(int exponent)
    {
        long result = 1;
        for (var i = 0; i < exponent; i++)
        {
            result *= 10;
        }

        return result;
    }

    /// <summary>A string's UTF-8 length as a varint, then its UTF-8 bytes (encoded in place unless larger than the buffer).</summary>
    private void WriteText(ReadOnlySpan<char> value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarInt((ulong)length);
        if (length <= buffer.Length)
        {
            Reserve(length);
            position += Encoding.UTF8.GetBytes(value, buffer.AsSpan(position));
            return;
        }

        Flush();
        var large = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var written = Encoding.UTF8.GetBytes(value, large);
            output.Write(large, 0, written);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(large);
        }
    }

    /// <summary>Copies bytes into the buffer, flushing as often as needed.</summary>
    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        while (bytes.Length > 0)
        {
            if (position == buffer.Length)
            {
                Flush();
            }

            var count = Math.Min(bytes.Length, buffer.Length - position);
            bytes[..count].CopyTo(buffer.AsSpan(position));
            position += count;
            bytes = bytes[count..];
        }
    }

    /// <summary>An unsigned LEB128 number: 7 bits a byte, low bits first (string and array lengths).</summary>
    private void WriteVarInt(ulong value)
    {
        var target = Take(VarIntSize(value));
        var i = 0;
        while (value >= 0x80)
        {
            target[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        target[i] = (byte)value;
    }

    private static int VarIntSize(ulong value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    private Span<byte> Take(int count)
    {
        Reserve(count);
        var span = buffer.AsSpan(position, count);
        position += count;
        return span;
    }

    private void Reserve(int count)
    {
        if (buffer.Length - position < count)
        {
            Flush();
        }
    }

    /// <summary>The element kind of Array(T) written from CLR <typeparamref name="T"/>; null when not in the contract.</summary>
    private static class ElementKind<T>
    {
        public static readonly RowBinaryKind? Kind = typeof(T) switch
        {
            var t when t == typeof(sbyte) => RowBinaryKind.Int8,
            var t when t == typeof(byte) => RowBinaryKind.UInt8,
            var t when t == typeof(short) => RowBinaryKind.Int16,
            var t when t == typeof(ushort) => RowBinaryKind.UInt16,
            var t when t == typeof(int) => RowBinaryKind.Int32,
            var t when t == typeof(uint) => RowBinaryKind.UInt32,
            var t when t == typeof(long) => RowBinaryKind.Int64,
            var t when t == typeof(ulong) => RowBinaryKind.UInt64,
            var t when t == typeof(float) => RowBinaryKind.Float32,
            var t when t == typeof(double) => RowBinaryKind.Float64,
            _ => null,
        };
    }
}
