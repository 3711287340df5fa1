using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// The behaviour every <see cref="IClickHouse"/> backend must share, run against chDB 26.5 and a real
/// clickhouse-server (18.16 here). Only SQL both versions accept.
/// </summary>
public abstract partial class ClickHouseContractTests(IClickHouse clickHouse, ITestOutputHelper output)
{
    private static readonly DateTime Epoch = DateTime.UnixEpoch;

    protected IClickHouse ClickHouse { get; } = clickHouse;

    protected ITestOutputHelper Output { get; } = output;

    protected static string NewTable(string prefix) => $"{prefix}_{Guid.NewGuid():N}";

    [Fact]
    public async Task ExecuteAsync_CreatesAndDropsTable_WhenDdlIsValid()
    {
        var table = NewTable("ddl");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (d Date, k UInt64, v String) ENGINE = MergeTree() PARTITION BY toYYYYMM(d) ORDER BY k");
        Assert.Equal("1", await Tsv.ScalarAsync(ClickHouse, $"EXISTS TABLE {table}"));

        await ClickHouse.ExecuteAsync($"DROP TABLE {table}");

        Assert.Equal("0", await Tsv.ScalarAsync(ClickHouse, $"EXISTS TABLE {table}"));
    }

    [Fact]
    public async Task QueryAsync_ReturnsOnlyItsOwnResult_AfterAQueryFailedPartWayThroughItsOutput()
    {
        // The failing query has produced megabytes of rows when it throws; none of them may reach a later query.
        await Assert.ThrowsAsync<ClickHouseException>(async () =>
        {
            await using var stream = await ClickHouse.QueryAsync("SELECT throwIf(number = 2500000) FROM numbers(3000000)", "TabSeparated");
            await stream.CopyToAsync(Stream.Null);
        });

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal($"{i}", await Tsv.ScalarAsync(ClickHouse, $"SELECT {i}"));
            await using var stream = await ClickHouse.QueryAsync($"SELECT {i} + 1", "TabSeparated");
            using var reader = new StreamReader(stream);
            Assert.Equal($"{i + 1}\n", await reader.ReadToEndAsync());
        }
    }

    [Fact]
    public async Task InsertAsync_RoundTripsEveryContractType_WhenValuesAreAtTheirEdges()
    {
        var table = NewTable("types");
        await ClickHouse.ExecuteAsync($"""
            CREATE TABLE {table} (
                id UInt32, s String, i8 Int8, i16 Int16, i32 Int32, i64 Int64, u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64,
                f32 Float32, f64 Float64, dt DateTime, d Date, u UUID, ni Nullable(Int64), ns Nullable(String)
            ) ENGINE = MergeTree() ORDER BY id
            """);
        ClickHouseColumn[] columns =
        [
            new("id", "UInt32"), new("s", "String"), new("i8", "Int8"), new("i16", "Int16"), new("i32", "Int32"), new("i64", "Int64"),
            new("u8", "UInt8"), new("u16", "UInt16"), new("u32", "UInt32"), new("u64", "UInt64"), new("f32", "Float32"), new("f64", "Float64"),
            new("dt", "DateTime"), new("d", "Date"), new("u", "UUID"), new("ni", "Nullable(Int64)"), new("ns", "Nullable(String)"),
        ];
        object?[][] rows =
        [
            [0u, string.Empty, sbyte.MinValue, short.MinValue, int.MinValue, long.MinValue, byte.MinValue, ushort.MinValue, uint.MinValue, ulong.MinValue,
                float.MinValue, double.MinValue, Epoch, new DateOnly(1970, 1, 1), Guid.Empty, null, null],
            [1u, "tab\there\nnew line \\ back'slash \"quotes\" \0 nul", sbyte.MaxValue, short.MaxValue, int.MaxValue, long.MaxValue, byte.MaxValue, ushort.MaxValue, uint.MaxValue, ulong.MaxValue,
                float.MaxValue, double.MaxValue, new DateTime(2105, 12, 31, 23, 59, 59, DateTimeKind.Utc), new DateOnly(2105, 12, 31), Guid.Parse("ffffffff-ffff-ffff-ffff-ffffffffffff"), long.MinValue, string.Empty],
            [2u, "日本語 🚀 é", (sbyte)-1, (short)-1, -1, -1L, (byte)1, (ushort)1, 1u, 1UL,
                0.1f, 0.1, new DateTime(2024, 2, 29, 12, 34, 56, DateTimeKind.Utc), new DateOnly(2024, 2, 29), Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), long.MaxValue, "x"],
            [3u, new string('z', 100_000), (sbyte)0, (short)0, 0, 0L, (byte)0, (ushort)0, 0u, 0UL,
                float.NaN, double.PositiveInfinity, new DateTime(2024, 2, 29, 12, 0, 0, DateTimeKind.Unspecified), new DateOnly(2000, 1, 1), Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), 0L, "\\N"],
            [4u, "last", (sbyte)5, (short)5, 5, 5L, (byte)5, (ushort)5, 5u, 5UL,
                float.Epsilon, double.NegativeInfinity, new DateTime(2001, 9, 9, 1, 46, 40, 999, DateTimeKind.Utc), new DateOnly(2001, 9, 9), Guid.Parse("12345678-9abc-def0-1234-56789abcdef0"), 42L, null],
        ];

        var inserted = await ClickHouse.InsertAsync(table, columns, rows);

        Assert.Equal(rows.Length, inserted);
        var read = await Tsv.ReadAsync(ClickHouse, $"SELECT id, s, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, toUnixTimestamp(dt), d, u, ni, ns FROM {table} ORDER BY id");
        Assert.Equal(rows.Length, read.Count);
        for (var r = 0; r < rows.Length; r++)
        {
            var expected = rows[r];
            var actual = read[r];
            Assert.Equal(expected[0], Tsv.Parse<uint>(actual[0]));
            Assert.Equal(expected[1], actual[1]);
            Assert.Equal(expected[2], Tsv.Parse<sbyte>(actual[2]));
            Assert.Equal(expected[3], Tsv.Parse<short>(actual[3]));
            Assert.Equal(expected[4], Tsv.Parse<int>(actual[4]));
            Assert.Equal(expected[5], Tsv.Parse<long>(actual[5]));
            Assert.Equal(expected[6], Tsv.Parse<byte>(actual[6]));
            Assert.Equal(expected[7], Tsv.Parse<ushort>(actual[7]));
            Assert.Equal(expected[8], Tsv.Parse<uint>(actual[8]));
            Assert.Equal(expected[9], Tsv.Parse<ulong>(actual[9]));
            Assert.Equal((float)expected[10]!, Tsv.ParseFloat(actual[10]!));
            Assert.Equal((double)expected[11]!, Tsv.ParseDouble(actual[11]!));
            Assert.Equal(UnixSeconds((DateTime)expected[12]!), Tsv.Parse<long>(actual[12]));
            Assert.Equal(expected[13], Tsv.ParseDate(actual[13]));
            Assert.Equal(expected[14], Guid.Parse(actual[14]!));
            Assert.Equal(expected[15], actual[15] is null ? null : Tsv.Parse<long>(actual[15]));
            Assert.Equal(expected[16], actual[16]);
        }
    }

    [Fact]
    public async Task InsertAsync_WritesAMillionRowsThatReadBackExactly_WhenColumnsHaveSeveralTypes()
    {
        const int count = 1_000_000;
        var table = NewTable("bulk");
        await ClickHouse.ExecuteAsync($"""
            CREATE TABLE {table} (id UInt64, name String, ts DateTime, day Date, amount Float64, score Nullable(Int32), uid UUID, flag UInt8)
            ENGINE = MergeTree() PARTITION BY toYYYYMM(day) ORDER BY id
            """);
        ClickHouseColumn[] columns =
        [
            new("id", "UInt64"), new("name", "String"), new("ts", "DateTime"), new("day", "Date"), new("amount", "Float64"),
            new("score", "Nullable(Int32)"), new("uid", "UUID"), new("flag", "UInt8"),
        ];

        var stopwatch = Stopwatch.StartNew();
        var inserted = await ClickHouse.InsertAsync(table, columns, Enumerable.Range(0, count).Select(BulkRow));
        stopwatch.Stop();

        Assert.Equal(count, inserted);
        Output.WriteLine($"{ClickHouse.BackendName}: inserted {count:N0} rows x {columns.Length} columns in {stopwatch.ElapsedMilliseconds} ms = {count / stopwatch.Elapsed.TotalSeconds:N0} rows/s");

        stopwatch.Restart();
        await using var stream = await ClickHouse.QueryAsync($"SELECT id, name, toUnixTimestamp(ts), day, amount, score, uid, flag FROM {table} ORDER BY id", "TabSeparated");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var index = 0;
        var mismatches = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            // Typed comparisons, asserted once at the end: a million Assert.Equal calls on boxed values are slow.
            var fields = line.Split('\t');
            var expected = BulkRow(index);
            var score = fields[5] == "\\N" ? (int?)null : int.Parse(fields[5], CultureInfo.InvariantCulture);
            var same = fields.Length == 8
                && (ulong)expected[0]! == ulong.Parse(fields[0], CultureInfo.InvariantCulture)
                && (string)expected[1]! == Tsv.Unescape(fields[1])
                && UnixSeconds((DateTime)expected[2]!) == long.Parse(fields[2], CultureInfo.InvariantCulture)
                && (DateOnly)expected[3]! == Tsv.ParseDate(fields[3])
                && (double)expected[4]! == Tsv.ParseDouble(fields[4])
                && (int?)expected[5] == score
                && (Guid)expected[6]! == Guid.Parse(fields[6])
                && (byte)expected[7]! == byte.Parse(fields[7], CultureInfo.InvariantCulture);
            if (!same && mismatches.Count < 5)
            {
                mismatches.Add($"row {index}: expected [{string.Join(", ", expected)}], read [{line}]");
            }

            index++;
        }

        Assert.Empty(mismatches);
        Assert.Equal(count, index);
        Output.WriteLine($"{ClickHouse.BackendName}: read back and compared {count:N0} rows in {stopwatch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task InsertAsync_RoundTripsArrays_WhenArraysAreEmptyLargeOrAtTheirEdges()
    {
        var table = NewTable("arrays");
        await ClickHouse.ExecuteAsync($"""
            CREATE TABLE {table} (id UInt32, b Array(UInt8), i Array(Int32), u Array(UInt64), s Array(String), n Nullable(Float64))
            ENGINE = MergeTree() ORDER BY id
            """);
        ClickHouseColumn[] columns =
        [
            new("id", "UInt32"), new("b", "Array(UInt8)"), new("i", "Array(Int32)"), new("u", "Array(UInt64)"), new("s", "Array(String)"), new("n", "Nullable(Float64)"),
        ];
        object?[][] rows =
        [
            [0u, Array.Empty<byte>(), Array.Empty<int>(), Array.Empty<ulong>(), Array.Empty<string>(), null],
            [1u, Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray(), new[] { int.MinValue, -1, 0, 1, int.MaxValue }, new[] { 0UL, 1UL, ulong.MaxValue },
                new[] { string.Empty, "tab\there", "quote'\"", "日本語 🚀 é", "\\N", "comma,[]", "new\nline", "nul\0" }, 1.5],
            [2u, Enumerable.Repeat((byte)255, 4096).ToArray(), Enumerable.Range(-50_000, 100_000).ToArray(), Enumerable.Range(0, 60_000).Select(i => (ulong)i * 0x9E3779B97F4A7C15UL).ToArray(),
                Enumerable.Range(0, 20_000).Select(i => "item-" + i.ToString(CultureInfo.InvariantCulture)).ToArray(), double.NaN],
            [3u, new byte[] { 0 }, new[] { 7 }, new[] { 7UL }, new[] { new string('x', 300_000) }, -2.25],
        ];

        var inserted = await ClickHouse.InsertAsync(table, columns, rows);

        Assert.Equal(rows.Length, inserted);
        var read = await Tsv.ReadAsync(ClickHouse, $"""
            SELECT id, length(b), arrayStringConcat(arrayMap(x -> toString(x), b), ','), length(i), arrayStringConcat(arrayMap(x -> toString(x), i), ','),
                length(u), arrayStringConcat(arrayMap(x -> toString(x), u), ','), length(s), arrayStringConcat(arrayMap(x -> hex(x), s), ','), n
            FROM {table} ORDER BY id
            """);
        Assert.Equal(rows.Length, read.Count);
        for (var r = 0; r < rows.Length; r++)
        {
            var (bytes, ints, ulongs, strings) = ((byte[])rows[r][1]!, (int[])rows[r][2]!, (ulong[])rows[r][3]!, (string[])rows[r][4]!);
            string?[] expected =
            [
                r.ToString(CultureInfo.InvariantCulture),
                Text(bytes.Length), Join(bytes), Text(ints.Length), Join(ints), Text(ulongs.Length), Join(ulongs),
                Text(strings.Length), string.Join(',', strings.Select(x => Convert.ToHexString(Encoding.UTF8.GetBytes(x)))),
            ];
            Assert.Equal(expected, read[r][..^1]);
            Assert.Equal((double?)rows[r][5], read[r][^1] is { } n ? Tsv.ParseDouble(n) : null);
        }

        static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

        static string Join<T>(T[] values)
            where T : IFormattable => string.Join(',', values.Select(v => v.ToString(null, CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task InsertAsync_ReturnsZero_WhenThereAreNoRows()
    {
        var table = NewTable("empty");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree() ORDER BY k");

        var inserted = await ClickHouse.InsertAsync(table, [new("k", "UInt64")], []);

        Assert.Equal(0, inserted);
        Assert.Equal("0", await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {table}"));
    }

    [Fact]
    public async Task InsertAsync_ThrowsArgumentException_WhenValueHasWrongClrType()
    {
        var table = NewTable("wrongtype");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree() ORDER BY k");

        var error = await Assert.ThrowsAsync<ArgumentException>(() => ClickHouse.InsertAsync(table, [new("k", "UInt64")], [[1UL], [2]]));

        Assert.Contains("Row 1, column 'k' (UInt64) expects UInt64 but got Int32", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteAsync_CopiesRows_WhenInsertSelectRuns()
    {
        var source = NewTable("src");
        var target = NewTable("dst");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {source} (k UInt64, v String) ENGINE = MergeTree() ORDER BY k");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {target} (k UInt64, v String) ENGINE = MergeTree() ORDER BY k");
        await ClickHouse.InsertAsync(source, [new("k", "UInt64"), new("v", "String")], Enumerable.Range(1, 1000).Select(i => new object?[] { (ulong)i, "v" + i }));

        await ClickHouse.ExecuteAsync($"INSERT INTO {target} (k, v) SELECT k * 10, concat(v, '!') FROM {source} WHERE k % 2 = 0");

        var rows = await Tsv.ReadAsync(ClickHouse, $"SELECT count(), sum(k), min(v), max(v) FROM {target}");
        string?[] expected = ["500", (Enumerable.Range(1, 1000).Where(i => i % 2 == 0).Sum(i => (long)i) * 10).ToString(CultureInfo.InvariantCulture), "v10!", "v998!"];
        Assert.Equal(expected, rows.Single());
    }

    [Fact]
    public async Task ExecuteAsync_MergesPartialAggregates_WhenAggregatingMergeTreeGetsStatesTwice()
    {
        var raw = NewTable("raw");
        var aggregate = NewTable("agg");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {raw} (batch UInt8, d Date, user UInt64, amount UInt64) ENGINE = MergeTree() PARTITION BY toYYYYMM(d) ORDER BY (d, user)");
        await ClickHouse.ExecuteAsync($"""
            CREATE TABLE {aggregate} (d Date, users AggregateFunction(uniq, UInt64), total AggregateFunction(sum, UInt64))
            ENGINE = AggregatingMergeTree() PARTITION BY toYYYYMM(d) ORDER BY d
            """);
        var events = Enumerable.Range(0, 6000)
            .Select(i => (Batch: (byte)(i < 3000 ? 1 : 2), Day: new DateOnly(2024, 1, 30).AddDays(i % 5), User: (ulong)((i * 7) % 900), Amount: (ulong)(i % 97)))
            .ToList();
        await ClickHouse.InsertAsync(
            raw,
            [new("batch", "UInt8"), new("d", "Date"), new("user", "UInt64"), new("amount", "UInt64")],
            events.Select(e => new object?[] { e.Batch, e.Day, e.User, e.Amount }));

        foreach (var batch in new[] { 1, 2 })
        {
            await ClickHouse.ExecuteAsync($"INSERT INTO {aggregate} SELECT d, uniqState(user), sumState(amount) FROM {raw} WHERE batch = {batch} GROUP BY d");
        }

        var merged = await Tsv.ReadAsync(ClickHouse, $"SELECT d, uniqMerge(users), sumMerge(total) FROM {aggregate} GROUP BY d ORDER BY d");
        var expected = events.GroupBy(e => e.Day).OrderBy(g => g.Key)
            .Select(g => new string?[] { g.Key.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), g.Select(e => e.User).Distinct().Count().ToString(CultureInfo.InvariantCulture), g.Sum(e => (long)e.Amount).ToString(CultureInfo.InvariantCulture) })
            .ToList();
        Assert.Equal(expected, merged);
        Assert.Equal("10", await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {aggregate}"));

        await ClickHouse.ExecuteAsync($"OPTIMIZE TABLE {aggregate} FINAL");

        Assert.Equal("5", await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {aggregate}"));
        Assert.Equal(expected, await Tsv.ReadAsync(ClickHouse, $"SELECT d, uniqMerge(users), sumMerge(total) FROM {aggregate} GROUP BY d ORDER BY d"));
    }

    [Fact]
    public async Task ExecuteAsync_SwapsOnlyThatPartition_WhenReplacePartitionRuns()
    {
        var target = NewTable("target");
        var staging = NewTable("staging");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {target} (d Date, k UInt64, v String) ENGINE = MergeTree() PARTITION BY toYYYYMM(d) ORDER BY k");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {staging} AS {target}");
        ClickHouseColumn[] columns = [new("d", "Date"), new("k", "UInt64"), new("v", "String")];
        await ClickHouse.InsertAsync(target, columns, Enumerable.Range(1, 100).Select(i => new object?[] { new DateOnly(2024, 1, 1 + (i % 28)), (ulong)i, "old" }));
        await ClickHouse.InsertAsync(target, columns, Enumerable.Range(1, 50).Select(i => new object?[] { new DateOnly(2024, 2, 1 + (i % 28)), (ulong)i, "feb" }));
        await ClickHouse.InsertAsync(staging, columns, Enumerable.Range(1, 10).Select(i => new object?[] { new DateOnly(2024, 1, i), (ulong)i, "new" }));

        await ClickHouse.ExecuteAsync($"ALTER TABLE {target} REPLACE PARTITION 202401 FROM {staging}");

        var rows = await Tsv.ReadAsync(ClickHouse, $"SELECT toYYYYMM(d) AS m, v, count() FROM {target} GROUP BY m, v ORDER BY m, v");
        string?[][] expected = [["202401", "new", "10"], ["202402", "feb", "50"]];
        Assert.Equal(expected, rows);
        Assert.Equal("10", await Tsv.ScalarAsync(ClickHouse, $"SELECT count() FROM {staging}"));
    }

    [Fact]
    public async Task QueryAsync_ReturnsRequestedFormat_WhenFormatIsJsonCompact()
    {
        await using var stream = await ClickHouse.QueryAsync("SELECT toUInt32(number) AS n, toString(number) AS s FROM system.numbers LIMIT 3", "JSONCompact");
        using var json = await JsonDocument.ParseAsync(stream);

        var data = json.RootElement.GetProperty("data").EnumerateArray()
            .Select(row => $"{row[0].GetRawText()}|{row[1].GetString()}")
            .ToList();
        Assert.Equal(["0|0", "1|1", "2|2"], data);
        Assert.Equal(["n", "s"], json.RootElement.GetProperty("meta").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task QueryAsync_ReturnsCsvWithHeader_WhenFormatIsCsvWithNames()
    {
        await using var stream = await ClickHouse.QueryAsync("SELECT 1 AS a, 'x,y' AS b;", "CSVWithNames");
        using var reader = new StreamReader(stream);

        Assert.Equal("\"a\",\"b\"\n1,\"x,y\"\n", await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task QueryAsync_ReturnsEmptyStream_WhenNoRowsMatch()
    {
        await using var stream = await ClickHouse.QueryAsync("SELECT number FROM system.numbers LIMIT 0", "TabSeparated");
        using var reader = new StreamReader(stream);

        Assert.Equal(string.Empty, await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task ExecuteAsync_ThrowsUnknownTableCode60WithQuery_WhenTableIsMissing()
    {
        var sql = $"INSERT INTO {NewTable("missing")} SELECT 1";

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => ClickHouse.ExecuteAsync(sql));

        Assert.Equal(60, error.ErrorCode);
        Assert.Equal(sql, error.Query);
        Assert.False(error.IsTransient);
    }

    [Fact]
    public async Task InsertAsync_ThrowsUnknownTableCode60WithInsertQuery_WhenTableIsMissing()
    {
        var table = NewTable("missing");

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => ClickHouse.InsertAsync(table, [new("k", "UInt64")], [[1UL]]));

        Assert.Equal(60, error.ErrorCode);
        Assert.StartsWith($"INSERT INTO {table} (", error.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryAsync_ThrowsSyntaxErrorCode62WithQuery_WhenSqlIsInvalid()
    {
        const string sql = "SELEC 1";

        var error = await Assert.ThrowsAsync<ClickHouseException>(() => ClickHouse.QueryAsync(sql, "TabSeparated"));

        Assert.Equal(62, error.ErrorCode);
        Assert.Equal(sql, error.Query);
        Assert.Contains("Syntax error", error.Message, StringComparison.Ordinal);
        Assert.False(error.IsTransient);
    }

    [Fact]
    public async Task QueryAsync_ThrowsClickHouseException_WhenQueryFailsAfterMegabytesOfOutput()
    {
        const string sql = "SELECT throwIf(number = 2500000) FROM system.numbers LIMIT 3000000";

        var error = await Assert.ThrowsAsync<ClickHouseException>(async () =>
        {
            await using var stream = await ClickHouse.QueryAsync(sql, "TabSeparated");
            await stream.CopyToAsync(Stream.Null);
        });

        Assert.Equal(395, error.ErrorCode); // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        Assert.Equal(sql, error.Query);
    }

    protected static long UnixSeconds(DateTime value) =>
        (long)(DateTime.SpecifyKind(value, value.Kind == DateTimeKind.Local ? DateTimeKind.Local : DateTimeKind.Utc).ToUniversalTime() - Epoch).TotalSeconds;

    private static object?[] BulkRow(int i)
    {
        Span<byte> guid = stackalloc byte[16];
        BitConverter.TryWriteBytes(guid, unchecked((ulong)i * 0x9E3779B97F4A7C15UL));
        BitConverter.TryWriteBytes(guid[8..], ~(long)i);
        return
        [
            (ulong)i,
            "user-" + (i % 1000).ToString(CultureInfo.InvariantCulture) + (i % 3 == 0 ? "-é\t" : string.Empty),
            new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(i),
            new DateOnly(2024, 1, 1).AddDays(i % 60),
            i * 0.25,
            i % 7 == 0 ? null : (i % 1000) - 500,
            new Guid(guid),
            (byte)(i % 2),
        ];
    }
}
