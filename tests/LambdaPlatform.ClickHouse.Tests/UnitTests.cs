namespace LambdaPlatform.ClickHouse.Tests;

public sealed class ClickHouseErrorsTests
{
    [Theory]
    [InlineData("Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., e.what() = DB::Exception", 60)]
    [InlineData("Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR) (version 26.5.1.1)", 62)]
    [InlineData("Error: Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero", 395)]
    [InlineData("Connection refused", null)]
    public void ParseCode_ReadsCode_WhenTextComesFromAnyServerVersion(string text, int? expected) =>
        Assert.Equal(expected, ClickHouseErrors.ParseCode(text));

    [Theory]
    [InlineData(252, true)]
    [InlineData(159, true)]
    [InlineData(60, false)]
    [InlineData(62, false)]
    public void IsTransient_FlagsLoadErrorsOnly_WhenGivenACode(int code, bool expected) =>
        Assert.Equal(expected, ClickHouseErrors.IsTransient(code));

    [Fact]
    public void ValidateFormat_Throws_WhenFormatCouldInjectSql() =>
        Assert.Throws<ArgumentException>(() => ClickHouseErrors.ValidateFormat("TSV; DROP TABLE x"));
}

public sealed class RowBinaryTests
{
    [Theory]
    [InlineData("Array(Nullable(UInt8))")]
    [InlineData("Array(DateTime)")]
    [InlineData("Nullable(Array(Int32))")]
    [InlineData("Array(Array(Int32))")]
    [InlineData("LowCardinality(String)")]
    [InlineData("Decimal(18, 2)")]
    [InlineData("uint64")]
    public void Resolve_ThrowsNamingColumnAndType_WhenTypeIsNotInTheContract(string type)
    {
        var error = Assert.Throws<ArgumentException>(() => RowBinary.Resolve([new("c", type)]));

        Assert.Contains($"Column 'c' has type '{type}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_Throws_WhenNullGoesToANonNullableColumn()
    {
        var columns = RowBinary.Resolve([new("c", "String")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinary.Check(columns, [null], 3));

        Assert.Contains("Row 3, column 'c' (String) is null", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_Throws_WhenDateTimeIsBeforeTheEpoch()
    {
        var columns = RowBinary.Resolve([new("t", "DateTime")]);

        Assert.Throws<ArgumentException>(() => RowBinary.Check(columns, [new DateTime(1969, 12, 31, 0, 0, 0, DateTimeKind.Utc)], 0));
    }

    [Fact]
    public void Writer_WritesUuidAsTwoLittleEndianHalves_WhenValueIsAGuid()
    {
        var columns = RowBinary.Resolve([new("u", "UUID"), new("s", "Nullable(String)")]);
        var bytes = RowBinaryBytes.Boxed(columns, [[Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), new string('a', 200)]]);

        Assert.Equal(Convert.FromHexString("7766554433221100ffeeddccbbaa9988"), bytes[..16]);
        Assert.Equal(new byte[] { 0, 0xC8, 0x01 }, bytes[16..19]); // not null, then varint 200
        Assert.Equal(16 + 3 + 200, bytes.Length);
    }

    [Theory]
    [InlineData("Array(UInt8)", typeof(byte[]))]
    [InlineData("Array(Int32)", typeof(int[]))]
    [InlineData("Array(UInt64)", typeof(ulong[]))]
    [InlineData("Array(String)", typeof(string[]))]
    [InlineData("Array(Float64)", typeof(double[]))]
    public void Resolve_MapsArrayToClrArrayOfElementType_WhenElementIsInTheContract(string type, Type expected) =>
        Assert.Equal(expected, RowBinary.Resolve([new("a", type)])[0].ClrType);

    [Fact]
    public void Check_Throws_WhenArrayHasOtherElementType()
    {
        var columns = RowBinary.Resolve([new("a", "Array(UInt64)")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinary.Check(columns, [new long[] { 1 }], 0));

        Assert.Contains("expects UInt64[] but got Int64[]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_Throws_WhenStringArrayHoldsNull()
    {
        var columns = RowBinary.Resolve([new("a", "Array(String)")]);

        var error = Assert.Throws<ArgumentException>(() => RowBinary.Check(columns, [new[] { "x", null }], 2));

        Assert.Contains("Row 2, column 'a' (Array(String)): element 1 is null", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_WritesVarIntLengthThenElements_WhenColumnsAreArrays()
    {
        var columns = RowBinary.Resolve([new("b", "Array(UInt8)"), new("i", "Array(Int32)"), new("u", "Array(UInt64)"), new("s", "Array(String)"), new("e", "Array(Int32)")]);
        var bytes300 = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        var bytes = RowBinaryBytes.Boxed(columns, [[bytes300, new[] { 1, -1 }, new[] { ulong.MaxValue }, new[] { "ab", string.Empty }, Array.Empty<int>()]], bufferSize: 64); // smaller than the row: written in pieces

        byte[] expected =
        [
            0xAC, 0x02, .. bytes300,
            0x02, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
            0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0x02, 0x02, (byte)'a', (byte)'b', 0x00,
            0x00,
        ];
        Assert.Equal(expected, bytes);
    }
}

public sealed class ClickHouseServerOptionsTests
{
    [Fact]
    public void FromConnectionString_ReadsEveryKey_WhenAllAreGiven()
    {
        var options = ClickHouseServerOptions.FromConnectionString("Host=ch1;Port=8443;Username=u;Password=p;Database=db;Protocol=https;Timeout=30");

        Assert.Equal(new ClickHouseServerOptions { Host = "ch1", Port = 8443, User = "u", Password = "p", Database = "db", UseTls = true, Timeout = TimeSpan.FromSeconds(30) }, options);
        Assert.Equal("https://ch1:8443", options.Endpoint);
        Assert.Equal(options, ClickHouseServerOptions.FromConnectionString(options.ToConnectionString()));
    }

    [Fact]
    public void FromConnectionString_ThrowsNamingKey_WhenKeyIsUnknown()
    {
        var error = Assert.Throws<ArgumentException>(() => ClickHouseServerOptions.FromConnectionString("Host=a;Compress=true"));

        Assert.Contains("'compress'", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ToString_HidesPassword_WhenOptionsAreLogged() =>
        Assert.DoesNotContain("secret", new ClickHouseServerOptions { Password = "secret" }.ToString(), StringComparison.Ordinal);

    [Fact]
    public void Constructor_ThrowsNamingSetting_WhenPortIsOutOfRange()
    {
        var error = Assert.Throws<ArgumentException>(() => new ServerClickHouse(new ClickHouseServerOptions { Port = 0 }));

        Assert.Contains("ClickHouseServerOptions.Port", error.Message, StringComparison.Ordinal);
    }
}
