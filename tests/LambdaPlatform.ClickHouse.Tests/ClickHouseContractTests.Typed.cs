using System.Globalization;
using System.Text;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>The typed insert (<see cref="IClickHouse.InsertAsync{T}"/>), on both backends.</summary>
public abstract partial class ClickHouseContractTests
{
    private static readonly ClickHouseColumn[] TypedColumns =
    [
        new("id", "UInt32"), new("u", "UUID"), new("s", "String"), new("b", "String"), new("t", "DateTime"), new("ms", "UInt16"),
        new("big", "UInt64"), new("i64", "Int64"), new("n", "Nullable(String)"), new("d", "Date"),
    ];

    private static readonly TypedRow[] TypedRows =
    [
        new(0, Guid.Empty, string.Empty, [], DateTime.UnixEpoch, 0, 0, long.MinValue, null, new DateOnly(1970, 1, 1)),
        new(1, Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), "日本語 🚀 é", Encoding.UTF8.GetBytes("{\"ünï\":\"cödé ✓\"}"),
            new DateTime(2024, 2, 29, 12, 34, 56, 789, DateTimeKind.Utc), 789, ulong.MaxValue, long.MaxValue, string.Empty, new DateOnly(2024, 2, 29)),
        new(2, Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "tab\there 'quote' back\\slash", Encoding.UTF8.GetBytes(new string('x', 1000)),
            new DateTime(2105, 12, 31, 23, 59, 59, DateTimeKind.Utc), ushort.MaxValue, 1UL << 63, -1, "ü", new DateOnly(2105, 12, 31)),
    ];

    [Fact]
    public async Task InsertAsyncTyped_EncodesLikeClickHouseAndTheBoxedPath_WhenValuesComeFromSqlLiterals()
    {
        // ClickHouse encodes each row from SQL literals: an encoder and a value source independent of ours. A fault in the
        // shared primitives (e.g. UUID halves swapped) shows here even though typed and boxed would still agree.
        var expected = new MemoryStream();
        foreach (var row in TypedRows)
        {
            await using var stream = await ClickHouse.QueryAsync(LiteralSelect(row), "RowBinary");
            await stream.CopyToAsync(expected);
        }

        var columns = RowBinary.Resolve(TypedColumns);
        var typed = RowBinaryBytes.Typed(columns, TypedRows, WriteTypedRow);
        var boxed = RowBinaryBytes.Boxed(columns, TypedRows.Select(Boxed));

        Assert.Equal(Convert.ToHexString(expected.ToArray()), Convert.ToHexString(typed));
        Assert.Equal(Convert.ToHexString(typed), Convert.ToHexString(boxed));
    }

    [Fact]
    public async Task InsertAsyncTyped_RoundTripsExactValues_WhenRowsHaveUuidsSecondsUtf8EmptyStringsAndLargeUInt64()
    {
        var table = await CreateTypedTableAsync("typed");

        var inserted = await ClickHouse.InsertAsync(table, TypedColumns, TypedRows, WriteTypedRow);

        Assert.Equal(TypedRows.Length, inserted);
        var read = await Tsv.ReadAsync(ClickHouse, $"SELECT id, u, s, b, toUnixTimestamp(t), ms, big, i64, n, d FROM {table} ORDER BY id");
        Assert.Equal(TypedRows.Length, read.Count);
        for (var r = 0; r < TypedRows.Length; r++)
        {
            var row = TypedRows[r];
            string?[] expected =
            [
                Text(row.Id), row.Uuid.ToString(), row.Text, Encoding.UTF8.GetString(row.Utf8), Text(UnixSeconds(row.Time)), Text(row.Millis), Text(row.Big),
                Text(row.Signed), row.Maybe,
            ];
            Assert.Equal(expected, read[r][..^1]);
            Assert.Equal(row.Day, Tsv.ParseDate(read[r][^1])); // 18.16 prints Date 0 as 0000-00-00
        }

        // What is stored encodes back to the bytes that were sent.
        await using var stored = await ClickHouse.QueryAsync($"SELECT * FROM {table} ORDER BY id", "RowBinary");
        var bytes = new MemoryStream();
        await stored.CopyToAsync(bytes);
        Assert.Equal(RowBinaryBytes.Typed(RowBinary.Resolve(TypedColumns), TypedRows, WriteTypedRow), bytes.ToArray());
    }

    [Fact]
    public async Task InsertAsyncTyped_StoresEveryRow_WhenRowsSpanSeveralRequestsAndBuffers()
    {
        const int count = 250_001; // > 2 requests of the server's 100,000 rows, > 100 buffers of 256 KiB
        var table = NewTable("typedbulk");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (k UInt64, s String, t DateTime) ENGINE = MergeTree() ORDER BY k");
        var rows = Enumerable.Range(0, count).ToArray();

        var inserted = await ClickHouse.InsertAsync(table, [new("k", "UInt64"), new("s", "String"), new("t", "DateTime")], rows, (RowBinaryWriter w, in int i) =>
        {
            w.WriteUInt64((ulong)i);
            w.WriteString(i % 10 == 0 ? "ü" + new string('x', i % 2000) : string.Empty);
            w.WriteDateTime(DateTime.UnixEpoch.AddSeconds(i));
        });

        Assert.Equal(count, inserted);
        var expectedBytes = rows.Sum(i => i % 10 == 0 ? 2L + (i % 2000) : 0);
        string?[] expected = [Text(count), Text(rows.Sum(i => (long)i)), Text(count), Text(expectedBytes), Text(rows.Sum(i => (long)i))];
        Assert.Equal(expected, (await Tsv.ReadAsync(ClickHouse, $"SELECT count(), sum(k), uniqExact(k), sum(length(s)), sum(toUInt64(toUnixTimestamp(t))) FROM {table}")).Single());
    }

    [Fact]
    public async Task InsertAsyncTyped_ThrowsArgumentExceptionAndStoresNothing_WhenRowWriterSkipsAColumnMegabytesIntoTheBatch()
    {
        var table = NewTable("typedbad");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (k UInt64, s String) ENGINE = MergeTree() ORDER BY k");
        var rows = Enumerable.Range(0, 3000).ToArray();
        var filler = new string('y', 1000);

        var error = await Assert.ThrowsAsync<ArgumentException>(() => ClickHouse.InsertAsync(table, [new("k", "UInt64"), new("s", "String")], rows, (RowBinaryWriter w, in int i) =>
        {
            w.WriteUInt64((ulong)i);
            // ~2.5 MB in. A body streamed while it is encoded would have reached the server by now, and 18.16 stores the
            // rows of a body cut off there (2,470 of them were, when this backend streamed).
            if (i != 2500)
            {
                w.WriteString(filler);
            }
        }));

        Assert.Contains("Row 2500 has 1 values; the insert has 2 columns", error.Message, StringComparison.Ordinal);
        Assert.Equal("0", await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {table}"));
    }

    [Fact]
    public async Task InsertAsyncTyped_ThrowsUnknownTableCode60WithInsertQuery_WhenTableIsMissing()
    {
        var table = NewTable("missing");

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => ClickHouse.InsertAsync(table, [new("k", "UInt64")], [1UL], (RowBinaryWriter w, in ulong k) => w.WriteUInt64(k)));

        Assert.Equal(60, error.ErrorCode);
        Assert.StartsWith($"INSERT INTO {table} (", error.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InsertAsyncTyped_ReturnsZero_WhenThereAreNoRows()
    {
        var table = NewTable("typedempty");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree() ORDER BY k");

        var inserted = await ClickHouse.InsertAsync(table, [new("k", "UInt64")], Array.Empty<ulong>(), (RowBinaryWriter w, in ulong k) => w.WriteUInt64(k));

        Assert.Equal(0, inserted);
        Assert.Equal("0", await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {table}"));
    }

    private async Task<string> CreateTypedTableAsync(string prefix)
    {
        var table = NewTable(prefix);
        await ClickHouse.ExecuteAsync($"""
            CREATE TABLE {table} (id UInt32, u UUID, s String, b String, t DateTime('UTC'), ms UInt16, big UInt64, i64 Int64, n Nullable(String), d Date)
            ENGINE = MergeTree() ORDER BY id
            """);
        return table;
    }

    /// <summary>One row as ClickHouse would build it from literals, in <see cref="TypedColumns"/> order.</summary>
    private static string LiteralSelect(TypedRow row)
    {
        var time = row.Time.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        var maybe = row.Maybe is null ? "CAST(NULL AS Nullable(String))" : $"toNullable({ClickHouseErrors.QuoteString(row.Maybe)})";
        return $"""
            SELECT toUInt32({Text(row.Id)}), toUUID('{row.Uuid}'), {ClickHouseErrors.QuoteString(row.Text)}, {ClickHouseErrors.QuoteString(Encoding.UTF8.GetString(row.Utf8))},
                toDateTime('{time}', 'UTC'), toUInt16({Text(row.Millis)}), toUInt64('{Text(row.Big)}'), toInt64('{Text(row.Signed)}'), {maybe},
                toDate('{row.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}')
            """;
    }

    private static void WriteTypedRow(RowBinaryWriter writer, in TypedRow row)
    {
        writer.WriteUInt32(row.Id);
        writer.WriteUuid(row.Uuid);
        writer.WriteString(row.Text);
        writer.WriteUtf8(row.Utf8);
        writer.WriteDateTime(row.Time);
        writer.WriteUInt16(row.Millis);
        writer.WriteUInt64(row.Big);
        writer.WriteInt64(row.Signed);
        if (row.Maybe is null)
        {
            writer.WriteNull();
        }
        else
        {
            writer.WriteString(row.Maybe);
        }

        writer.WriteDate(row.Day);
    }

    private static object?[] Boxed(TypedRow row) =>
        [row.Id, row.Uuid, row.Text, Encoding.UTF8.GetString(row.Utf8), row.Time, row.Millis, row.Big, row.Signed, row.Maybe, row.Day];

    private static string Text<T>(T value)
        where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private readonly record struct TypedRow(uint Id, Guid Uuid, string Text, byte[] Utf8, DateTime Time, ushort Millis, ulong Big, long Signed, string? Maybe, DateOnly Day);
}
