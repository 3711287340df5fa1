using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace LambdaPlatform.ClickHouse;

/// <summary>The value kinds <see cref="IClickHouse.InsertAsync"/> accepts (see its XML doc).</summary>
internal enum RowBinaryKind
{
    String,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    DateTime,
    DateTime64,
    Date,
    Uuid,
}

/// <summary>One insert column resolved to how its values are checked and encoded.</summary>
/// <param name="Name">Column name.</param>
/// <param name="Type">ClickHouse type as given by the caller.</param>
/// <param name="Kind">Value kind.</param>
/// <param name="IsNullable">True for <c>Nullable(T)</c>.</param>
/// <param name="Precision">Sub-second digits of <c>DateTime64(p)</c>; 0 otherwise.</param>
/// <param name="IsArray">True for <c>Array(T)</c>: <see cref="Kind"/> is then the kind of the elements.</param>
internal sealed record RowBinaryColumn(string Name, string Type, RowBinaryKind Kind, bool IsNullable, int Precision, bool IsArray = false)
{
    /// <summary>The CLR type a non-null value of this column must have (<c>T[]</c> for <c>Array(T)</c>).</summary>
    public Type ClrType { get; } = IsArray ? ElementClrType(Kind).MakeArrayType() : ElementClrType(Kind);

    private static Type ElementClrType(RowBinaryKind kind) => kind switch
    {
        RowBinaryKind.String => typeof(string),
        RowBinaryKind.Int8 => typeof(sbyte),
        RowBinaryKind.Int16 => typeof(short),
        RowBinaryKind.Int32 => typeof(int),
        RowBinaryKind.Int64 => typeof(long),
        RowBinaryKind.UInt8 => typeof(byte),
        RowBinaryKind.UInt16 => typeof(ushort),
        RowBinaryKind.UInt32 => typeof(uint),
        RowBinaryKind.UInt64 => typeof(ulong),
        RowBinaryKind.Float32 => typeof(float),
        RowBinaryKind.Float64 => typeof(double),
        RowBinaryKind.DateTime or RowBinaryKind.DateTime64 => typeof(DateTime),
        RowBinaryKind.Date => typeof(DateOnly),
        RowBinaryKind.Uuid => typeof(Guid),
        _ => throw new InvalidOperationException(kind.ToString()),
    };
}

/// <summary>
/// The one RowBinary encoder of the platform: resolves insert columns, checks row values against the
/// contract of <see cref="IClickHouse.InsertAsync"/>, and writes ClickHouse's RowBinary format. Both backends
/// check values with it, so a row is accepted or rejected the same way whichever backend runs.
/// </summary>
internal static class RowBinary
{
    private const string Supported = "String, (U)Int8/16/32/64, Float32/64, DateTime, DateTime64(p), Date, UUID, Nullable(T), Array(T) of String, (U)Int8/16/32/64, Float32/64";
    private static readonly long EpochTicks = DateTime.UnixEpoch.Ticks;
    private static readonly int EpochDayNumber = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
    private static readonly DateTime MaxDateTime = DateTime.UnixEpoch.AddSeconds(uint.MaxValue);
    private static readonly DateOnly MaxDate = DateOnly.FromDayNumber(EpochDayNumber + ushort.MaxValue);

    /// <summary>Resolves <paramref name="columns"/>; throws <see cref="ArgumentException"/> naming an unsupported type.</summary>
    public static RowBinaryColumn[] Resolve(IReadOnlyList<ClickHouseColumn> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Count == 0)
        {
            throw new ArgumentException("An insert needs at least one column.", nameof(columns));
        }

        var result = new RowBinaryColumn[columns.Count];
        for (var i = 0; i < columns.Count; i++)
        {
            var column = columns[i] ?? throw new ArgumentException($"Column {i} is null.", nameof(columns));
            ArgumentException.ThrowIfNullOrWhiteSpace(column.Name, nameof(columns));
            result[i] = ResolveType(column.Name, column.Type);
        }

        return result;
    }

    private static RowBinaryColumn ResolveType(string name, string type)
    {
        var text = (type ?? string.Empty).Trim();
        if (text.StartsWith("Array(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            var element = ResolveType(name, text["Array(".Length..^1]);
            return element is { IsNullable: false, IsArray: false, Kind: not (RowBinaryKind.DateTime or RowBinaryKind.DateTime64 or RowBinaryKind.Date or RowBinaryKind.Uuid) }
                ? new RowBinaryColumn(name, type!, element.Kind, IsNullable: false, Precision: 0, IsArray: true)
                : throw Unsupported(name, type);
        }

        var nullable = false;
        if (text.StartsWith("Nullable(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            nullable = true;
            text = text["Nullable(".Length..^1].Trim();
        }

        var precision = 0;
        RowBinaryKind? kind = text switch
        {
            "String" => RowBinaryKind.String,
            "Int8" => RowBinaryKind.Int8,
            "Int16" => RowBinaryKind.Int16,
            "Int32" => RowBinaryKind.Int32,
            "Int64" => RowBinaryKind.Int64,
            "UInt8" => RowBinaryKind.UInt8,
            "UInt16" => RowBinaryKind.UInt16,
            "UInt32" => RowBinaryKind.UInt32,
            "UInt64" => RowBinaryKind.UInt64,
            "Float32" => RowBinaryKind.Float32,
            "Float64" => RowBinaryKind.Float64,
            "Date" => RowBinaryKind.Date,
            "UUID" => RowBinaryKind.Uuid,
            "DateTime" => RowBinaryKind.DateTime,
            _ => null,
        };

        if (kind is null && text.StartsWith("DateTime(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            kind = RowBinaryKind.DateTime; // DateTime('tz'): the value is still seconds since the epoch
        }
        else if (kind is null && text.StartsWith("DateTime64(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            var arguments = text["DateTime64(".Length..^1];
            var comma = arguments.IndexOf(',', StringComparison.Ordinal);
            var digits = (comma < 0 ? arguments : arguments[..comma]).Trim();
            if (int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out precision) && precision <= 9)
            {
                kind = RowBinaryKind.DateTime64;
            }
        }

        return kind is { } k
            ? new RowBinaryColumn(name, type!, k, nullable, precision)
            : throw Unsupported(name, type);
    }

    private static ArgumentException Unsupported(string name, string? type) =>
        new($"Column '{name}' has type '{type}', which InsertAsync does not support (supported: {Supported}).", nameof(type));

    /// <summary>
    /// Checks one row against <paramref name="columns"/> and returns the row to encode: the same array, or a copy
    /// where <see cref="DateTime"/> values were normalised to UTC (Local is converted, Unspecified is taken as UTC).
    /// </summary>
    /// <exception cref="ArgumentException">The row has the wrong width or a value of the wrong type or range.</exception>
    public static object?[] Check(RowBinaryColumn[] columns, object?[] row, long rowIndex)
    {
        if (row is null || row.Length != columns.Length)
        {
            throw new ArgumentException($"Row {rowIndex} has {row?.Length.ToString(CultureInfo.InvariantCulture) ?? "no"} values; the insert has {columns.Length} columns.", nameof(row));
        }

        object?[]? copy = null;
        for (var i = 0; i < columns.Length; i++)
        {
            var column = columns[i];
            var value = row[i];
            if (value is null)
            {
                if (!column.IsNullable)
                {
                    throw new ArgumentException($"Row {rowIndex}, column '{column.Name}' ({column.Type}) is null but the column is not Nullable.", nameof(row));
                }

                continue;
            }

            if (value.GetType() != column.ClrType)
            {
                throw new ArgumentException($"Row {rowIndex}, column '{column.Name}' ({column.Type}) expects {column.ClrType.Name} but got {value.GetType().Name}.", nameof(row));
            }

            if (column.IsArray)
            {
                if (value is string?[] strings && Array.IndexOf(strings, null) is var at && at >= 0)
                {
                    throw new ArgumentException($"Row {rowIndex}, column '{column.Name}' ({column.Type}): element {at} is null; array elements cannot be null.", nameof(row));
                }

                continue;
            }

            switch (column.Kind)
            {
                case RowBinaryKind.DateTime or RowBinaryKind.DateTime64:
                    var dateTime = (DateTime)value;
                    var utc = ToUtc(dateTime);
                    if (column.Kind == RowBinaryKind.DateTime && (utc < DateTime.UnixEpoch || utc > MaxDateTime))
                    {
                        throw new ArgumentException($"Row {rowIndex}, column '{column.Name}': {utc:O} is outside DateTime's range 1970-01-01..2106-02-07.", nameof(row));
                    }

                    if (utc.Kind != dateTime.Kind)
                    {
                        copy ??= (object?[])row.Clone();
                        copy[i] = utc;
                    }

                    break;
                case RowBinaryKind.Date:
                    var date = (DateOnly)value;
                    if (date.DayNumber < EpochDayNumber || date > MaxDate)
                    {
                        throw new ArgumentException($"Row {rowIndex}, column '{column.Name}': {date:O} is outside Date's range 1970-01-01..{MaxDate:O}.", nameof(row));
                    }

                    break;
            }
        }

        return copy ?? row;
    }

    /// <summary>A value the contract calls UTC: Local is converted, Unspecified is taken as UTC.</summary>
    public static DateTime ToUtc(DateTime value) => value.Kind switch
    {
        DateTimeKind.Utc => value,
        DateTimeKind.Local => value.ToUniversalTime(),
        _ => DateTime.SpecifyKind(value, DateTimeKind.Utc),
    };

    /// <summary>Writes checked rows in RowBinary to a stream through one reusable buffer.</summary>
    internal sealed class Writer : IDisposable
    {
        private readonly Stream output;
        private readonly RowBinaryColumn[] columns;
        private byte[] buffer;
        private int position;

        public Writer(Stream output, RowBinaryColumn[] columns, int bufferSize = 1 << 18)
        {
            this.output = output;
            this.columns = columns;
            buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        }

        /// <summary>Encodes one row already passed through <see cref="Check"/>.</summary>
        public void WriteRow(object?[] row)
        {
            for (var i = 0; i < columns.Length; i++)
            {
                var column = columns[i];
                var value = row[i];
                if (column.IsNullable)
                {
                    Reserve(1);
                    buffer[position++] = value is null ? (byte)1 : (byte)0;
                    if (value is null)
                    {
                        continue;
                    }
                }

                if (column.IsArray)
                {
                    WriteArray(column.Kind, (Array)value!);
                }
                else
                {
                    WriteValue(column, value!);
                }
            }
        }

        /// <summary>An array: its length as a varint, then its elements (numbers little-endian, copied in bulk).</summary>
        private void WriteArray(RowBinaryKind kind, Array values)
        {
            var length = (ulong)values.Length;
            WriteVarInt(Take(VarIntSize(length)), length);
            switch (values)
            {
                case string[] strings:
                    foreach (var s in strings)
                    {
                        WriteString(s);
                    }

                    break;
                case byte[] bytes:
                    WriteBytes(bytes);
                    break;
                case sbyte[] v:
                    WriteBytes(MemoryMarshal.AsBytes(v.AsSpan()));
                    break;
                case short[] v:
                    WriteNumbers<short>(v);
                    break;
                case ushort[] v:
                    WriteNumbers<ushort>(v);
                    break;
                case int[] v:
                    WriteNumbers<int>(v);
                    break;
                case uint[] v:
                    WriteNumbers<uint>(v);
                    break;
                case long[] v:
                    WriteNumbers<long>(v);
                    break;
                case ulong[] v:
                    WriteNumbers<ulong>(v);
                    break;
                case float[] v:
                    WriteNumbers<float>(v);
                    break;
                case double[] v:
                    WriteNumbers<double>(v);
                    break;
                default:
                    throw new InvalidOperationException(kind.ToString());
            }
        }

        private void WriteNumbers<T>(T[] values)
            where T : unmanaged
        {
            if (!BitConverter.IsLittleEndian)
            {
                throw new PlatformNotSupportedException("RowBinary arrays are written on little-endian machines only.");
            }

            WriteBytes(MemoryMarshal.AsBytes(values.AsSpan()));
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

        private void WriteValue(RowBinaryColumn column, object value)
        {
            switch (column.Kind)
            {
                case RowBinaryKind.String:
                    WriteString((string)value);
                    break;
                case RowBinaryKind.Int8:
                    Reserve(1);
                    buffer[position++] = unchecked((byte)(sbyte)value);
                    break;
                case RowBinaryKind.UInt8:
                    Reserve(1);
                    buffer[position++] = (byte)value;
                    break;
                case RowBinaryKind.Int16:
                    BinaryPrimitives.WriteInt16LittleEndian(Take(2), (short)value);
                    break;
                case RowBinaryKind.UInt16:
                    BinaryPrimitives.WriteUInt16LittleEndian(Take(2), (ushort)value);
                    break;
                case RowBinaryKind.Int32:
                    BinaryPrimitives.WriteInt32LittleEndian(Take(4), (int)value);
                    break;
                case RowBinaryKind.UInt32:
                    BinaryPrimitives.WriteUInt32LittleEndian(Take(4), (uint)value);
                    break;
                case RowBinaryKind.Int64:
                    BinaryPrimitives.WriteInt64LittleEndian(Take(8), (long)value);
                    break;
                case RowBinaryKind.UInt64:
                    BinaryPrimitives.WriteUInt64LittleEndian(Take(8), (ulong)value);
                    break;
                case RowBinaryKind.Float32:
                    BinaryPrimitives.WriteSingleLittleEndian(Take(4), (float)value);
                    break;
                case RowBinaryKind.Float64:
                    BinaryPrimitives.WriteDoubleLittleEndian(Take(8), (double)value);
                    break;
                case RowBinaryKind.DateTime:
                    var seconds = (ToUtc((DateTime)value).Ticks - EpochTicks) / TimeSpan.TicksPerSecond;
                    BinaryPrimitives.WriteUInt32LittleEndian(Take(4), checked((uint)seconds));
                    break;
                case RowBinaryKind.DateTime64:
                    BinaryPrimitives.WriteInt64LittleEndian(Take(8), ToDateTime64(ToUtc((DateTime)value), column.Precision));
                    break;
                case RowBinaryKind.Date:
                    BinaryPrimitives.WriteUInt16LittleEndian(Take(2), checked((ushort)(((DateOnly)value).DayNumber - EpochDayNumber)));
                    break;
                case RowBinaryKind.Uuid:
                    WriteUuid((Guid)value);
                    break;
                default:
                    throw new InvalidOperationException(column.Kind.ToString());
            }
        }

        private static long ToDateTime64(DateTime utc, int precision)
        {
            var ticks = utc.Ticks - EpochTicks; // 100 ns units
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

        private void WriteUuid(Guid value)
        {
            // ClickHouse keeps a UUID as two UInt64 (high half first), each little-endian.
            Span<byte> bigEndian = stackalloc byte[16];
            value.TryWriteBytes(bigEndian, bigEndian: true, out _);
            var target = Take(16);
            BinaryPrimitives.WriteUInt64LittleEndian(target, BinaryPrimitives.ReadUInt64BigEndian(bigEndian));
            BinaryPrimitives.WriteUInt64LittleEndian(target[8..], BinaryPrimitives.ReadUInt64BigEndian(bigEndian[8..]));
        }

        private void WriteString(string value)
        {
            var length = Encoding.UTF8.GetByteCount(value);
            var varint = Take(VarIntSize((ulong)length));
            WriteVarInt(varint, (ulong)length);
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

        private static void WriteVarInt(Span<byte> target, ulong value)
        {
            var i = 0;
            while (value >= 0x80)
            {
                target[i++] = (byte)(value | 0x80);
                value >>= 7;
            }

            target[i] = (byte)value;
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

        /// <summary>Writes the buffered bytes to the output stream.</summary>
        public void Flush()
        {
            if (position > 0)
            {
                output.Write(buffer, 0, position);
                position = 0;
            }
        }

        public void Dispose()
        {
            if (buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = [];
            }
        }
    }
}
