using System.Text;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>Encodes rows the way the backends do, into bytes a test can compare.</summary>
internal static class RowBinaryBytes
{
    /// <summary>The boxed path: each row checked, then written as <c>object?[]</c>.</summary>
    public static byte[] Boxed(RowBinaryColumn[] columns, IEnumerable<object?[]> rows, int bufferSize = RowBinaryWriter.DefaultBufferSize) =>
        Encode(columns, bufferSize, writer =>
        {
            long index = 0;
            foreach (var row in rows)
            {
                writer.WriteRow(RowBinary.Check(columns, row, index++));
            }
        });

    /// <summary>The typed path: each row written by <paramref name="write"/>.</summary>
    public static byte[] Typed<T>(RowBinaryColumn[] columns, IReadOnlyList<T> rows, RowWriter<T> write, int bufferSize = RowBinaryWriter.DefaultBufferSize) =>
        Encode(columns, bufferSize, writer =>
        {
            foreach (var row in rows)
            {
                write(writer, in row);
                writer.EndRow();
            }
        });

    private static byte[] Encode(RowBinaryColumn[] columns, int bufferSize, Action<RowBinaryWriter> writeRows)
    {
        using var stream = new MemoryStream();
        var writer = new RowBinaryWriter(stream, columns, bufferSize);
        try
        {
            writeRows(writer);
            writer.Flush();
        }
        finally
        {
            writer.Release();
        }

        return stream.ToArray();
    }
}

public sealed class RowBinaryWriterTests
{
    private static readonly RowBinaryColumn[] EventColumns = RowBinary.Resolve(
    [
        new("id", "UUID"), new("type", "String"), new("t", "DateTime('UTC')"), new("ms", "UInt16"), new("payload", "String"),
        new("offset", "UInt64"), new("note", "Nullable(String)"),
    ]);

    [Fact]
    public void Typed_WritesClickHouseRowBinary_WhenRowHasUuidUtf8TimeAndLargeNumbers()
    {
        var row = new EventRow(
            Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), "é", new DateTime(2024, 2, 29, 12, 34, 56, 789, DateTimeKind.Utc), 789,
            Encoding.UTF8.GetBytes("{}"), ulong.MaxValue, null);

        var bytes = RowBinaryBytes.Typed(EventColumns, [row], WriteEvent);

        // Written out by hand from ClickHouse's RowBinary description, not by the code under test.
        byte[] expected =
        [
            0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, 0x88, // UUID: high half, then low, each little-endian
            0x02, 0xC3, 0xA9, // "é": UTF-8 length 2, then its bytes
            0xF0, 0x79, 0xE0, 0x65, // 1709210096 s since the epoch (2024-02-29 12:34:56 UTC), UInt32; the 789 ms are cut off
            0x15, 0x03, // 789, UInt16
            0x02, (byte)'{', (byte)'}',
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // UInt64 max
            0x01, // Nullable: null
        ];
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData(RowBinaryWriter.DefaultBufferSize)]
    [InlineData(16)] // smaller than one row: every value crosses buffer flushes
    public void Typed_WritesTheSameBytesAsBoxed_WhenRowsCoverEveryScalarNullableAndArrayType(int bufferSize)
    {
        var columns = RowBinary.Resolve(
        [
            new("s", "String"), new("i8", "Int8"), new("i16", "Int16"), new("i32", "Int32"), new("i64", "Int64"), new("u8", "UInt8"), new("u16", "UInt16"),
            new("u32", "UInt32"), new("u64", "UInt64"), new("f32", "Float32"), new("f64", "Float64"), new("dt", "DateTime"), new("dt64", "DateTime64(3)"),
            new("d", "Date"), new("u", "UUID"), new("ni", "Nullable(Int64)"), new("ns", "Nullable(String)"), new("ab", "Array(UInt8)"),
            new("ai", "Array(Int32)"), new("as", "Array(String)"), new("au", "Array(UInt64)"), new("ai8", "Array(Int8)"),
        ]);
        object?[][] rows =
        [
            [string.Empty, sbyte.MinValue, short.MinValue, int.MinValue, long.MinValue, byte.MinValue, ushort.MinValue, uint.MinValue, ulong.MinValue,
                float.MinValue, double.MinValue, DateTime.UnixEpoch, new DateTime(1969, 12, 31, 23, 59, 59, 500, DateTimeKind.Utc), new DateOnly(1970, 1, 1), Guid.Empty,
                null, null, Array.Empty<byte>(), Array.Empty<int>(), Array.Empty<string>(), Array.Empty<ulong>(), Array.Empty<sbyte>()],
            ["日本語 🚀 é\t\0", sbyte.MaxValue, short.MaxValue, int.MaxValue, long.MaxValue, byte.MaxValue, ushort.MaxValue, uint.MaxValue, ulong.MaxValue,
                float.NaN, double.PositiveInfinity, new DateTime(2105, 12, 31, 23, 59, 59, DateTimeKind.Utc), new DateTime(2024, 2, 29, 12, 34, 56, 789, DateTimeKind.Unspecified),
                new DateOnly(2105, 12, 31), Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), long.MinValue, string.Empty,
                new byte[] { 0, 255 }, new[] { -1, 1 }, new[] { string.Empty, "ü", new string('x', 200) }, new[] { ulong.MaxValue, 1UL }, new sbyte[] { -1, 1 }],
            [new string('z', 1000), (sbyte)-1, (short)-1, -1, -1L, (byte)1, (ushort)1, 1u, 1UL << 63, 0.1f, 0.1,
                new DateTime(2024, 2, 29, 12, 0, 0, 999, DateTimeKind.Local), new DateTime(2001, 9, 9, 1, 46, 40, 1, DateTimeKind.Utc), new DateOnly(2024, 2, 29),
                Guid.Parse("12345678-9abc-def0-1234-56789abcdef0"), 42L, "x", Enumerable.Range(0, 300).Select(i => (byte)i).ToArray(), Enumerable.Range(0, 100).ToArray(), new[] { "a" }, new[] { 1UL << 63 }, new sbyte[] { sbyte.MinValue }],
        ];

        var boxed = RowBinaryBytes.Boxed(columns, rows, bufferSize);
        var typed = RowBinaryBytes.Typed(columns, rows, WriteEveryType, bufferSize);

        Assert.Equal(boxed, typed);
        Assert.Equal(boxed, RowBinaryBytes.Boxed(columns, rows)); // and neither depends on the buffer size
    }

    [Fact]
    public void Typed_ThrowsNamingRowAndColumn_WhenRowWriterUsesAnotherTypesMethod()
    {
        var columns = RowBinary.Resolve([new("k", "UInt64"), new("n", "UInt16")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinaryBytes.Typed(columns, [1, 2], (RowBinaryWriter w, in int r) =>
        {
            w.WriteUInt64((ulong)r);
            if (r == 2)
            {
                w.WriteUInt64(7); // UInt64 where UInt16 belongs: would shift every later byte
            }
            else
            {
                w.WriteUInt16(7);
            }
        }));

        Assert.Contains("Row 1, column 'n' (UInt16) got a value written as UInt64", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Typed_Throws_WhenRowWriterWritesTooFewValues()
    {
        var columns = RowBinary.Resolve([new("k", "UInt64"), new("n", "UInt16")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinaryBytes.Typed(columns, [1], (RowBinaryWriter w, in int r) => w.WriteUInt64((ulong)r)));

        Assert.Contains("Row 0 has 1 values; the insert has 2 columns (k, n)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Typed_Throws_WhenRowWriterWritesTooManyValues()
    {
        var columns = RowBinary.Resolve([new("k", "UInt64")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinaryBytes.Typed(columns, [1], (RowBinaryWriter w, in int r) =>
        {
            w.WriteUInt64((ulong)r);
            w.WriteUInt64((ulong)r);
        }));

        Assert.Contains("Row 0 has more values than the insert's 1 columns", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Typed_Throws_WhenNullGoesToANonNullableColumn()
    {
        var columns = RowBinary.Resolve([new("s", "String")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinaryBytes.Typed(columns, [1], (RowBinaryWriter w, in int _) => w.WriteNull()));

        Assert.Contains("Row 0, column 's' (String) is null", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Typed_Throws_WhenDateTimeIsBeforeTheEpoch()
    {
        var columns = RowBinary.Resolve([new("t", "DateTime")]);

        Assert.Throws<ArgumentException>(() => RowBinaryBytes.Typed(columns, [1], (RowBinaryWriter w, in int _) => w.WriteDateTime(new DateTime(1969, 12, 31, 0, 0, 0, DateTimeKind.Utc))));
    }

    private static void WriteEvent(RowBinaryWriter writer, in EventRow row)
    {
        writer.WriteUuid(row.Id);
        writer.WriteString(row.Type);
        writer.WriteDateTime(row.Time);
        writer.WriteUInt16(row.Millis);
        writer.WriteUtf8(row.Payload);
        writer.WriteUInt64(row.Offset);
        if (row.Note is null)
        {
            writer.WriteNull();
        }
        else
        {
            writer.WriteString(row.Note);
        }
    }

    /// <summary>The typed twin of the boxed rows above: the same values, each through its own method.</summary>
    private static void WriteEveryType(RowBinaryWriter w, in object?[] row)
    {
        w.WriteString(((string)row[0]!).AsSpan());
        w.WriteInt8((sbyte)row[1]!);
        w.WriteInt16((short)row[2]!);
        w.WriteInt32((int)row[3]!);
        w.WriteInt64((long)row[4]!);
        w.WriteUInt8((byte)row[5]!);
        w.WriteUInt16((ushort)row[6]!);
        w.WriteUInt32((uint)row[7]!);
        w.WriteUInt64((ulong)row[8]!);
        w.WriteFloat32((float)row[9]!);
        w.WriteFloat64((double)row[10]!);
        w.WriteDateTime((DateTime)row[11]!);
        w.WriteDateTime((DateTime)row[12]!);
        w.WriteDate((DateOnly)row[13]!);
        w.WriteUuid((Guid)row[14]!);
        if (row[15] is long ni)
        {
            w.WriteInt64(ni);
        }
        else
        {
            w.WriteNull();
        }

        if (row[16] is string ns)
        {
            w.WriteUtf8(Encoding.UTF8.GetBytes(ns));
        }
        else
        {
            w.WriteNull();
        }

        w.WriteArray<byte>((byte[])row[17]!);
        w.WriteArray<int>((int[])row[18]!);
        w.WriteArray((string[])row[19]!);
        w.WriteArray<ulong>((ulong[])row[20]!);
        w.WriteArray<sbyte>((sbyte[])row[21]!);
    }

    private sealed record EventRow(Guid Id, string Type, DateTime Time, ushort Millis, byte[] Payload, ulong Offset, string? Note);
}
