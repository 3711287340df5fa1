using System.Globalization;
using Xunit.Abstractions;

namespace LambdaPlatform.ClickHouse.Tests;

[Collection(ChDbGroup.Name)]
public sealed class ChDbContractTests(ChDbFixture fixture, ITestOutputHelper output)
    : ClickHouseContractTests(fixture.Backend, output)
{
    [Fact]
    public async Task InsertAsync_RoundTripsMilliseconds_WhenColumnIsDateTime64()
    {
        // DateTime64 does not exist in 18.16, so this part of the contract is checked on chDB only.
        var table = NewTable("dt64");
        await ClickHouse.ExecuteAsync($"CREATE TABLE {table} (id UInt8, t DateTime64(3), n Nullable(DateTime64(3))) ENGINE = MergeTree() ORDER BY id");
        DateTime[] values =
        [
            DateTime.UnixEpoch,
            new DateTime(2024, 2, 29, 23, 59, 59, 999, DateTimeKind.Utc),
            new DateTime(1969, 12, 31, 23, 59, 59, 500, DateTimeKind.Utc),
            new DateTime(2262, 4, 11, 0, 0, 0, 1, DateTimeKind.Utc),
        ];

        await ClickHouse.InsertAsync(
            table,
            [new("id", "UInt8"), new("t", "DateTime64(3)"), new("n", "Nullable(DateTime64(3))")],
            values.Select((v, i) => new object?[] { (byte)i, v.AddTicks(4_999), i == 0 ? null : v }));

        var rows = await Tsv.ReadAsync(ClickHouse, $"SELECT toUnixTimestamp64Milli(t), toUnixTimestamp64Milli(n) FROM {table} ORDER BY id");
        var expected = values.Select(v => (long)(v - DateTime.UnixEpoch).TotalMilliseconds).ToList();
        Assert.Equal(expected, rows.Select(r => long.Parse(r[0]!, CultureInfo.InvariantCulture)));
        Assert.Equal(expected.Select((e, i) => i == 0 ? null : e.ToString(CultureInfo.InvariantCulture)), rows.Select(r => r[1]));
    }

    [Fact]
    public async Task CreateAsync_ThrowsSayingWhereItLooked_WhenLibraryIsMissing()
    {
        var missing = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "libchdb.so");

        var error = await Assert.ThrowsAsync<ClickHouseException>(() =>
            ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = fixture.DataPath, LibraryPath = missing }));

        Assert.Contains($"'{missing}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("ChDbOptions.LibraryPath", error.Message, StringComparison.Ordinal);
        Assert.Contains("make deps", error.Message, StringComparison.Ordinal);
        Assert.Null(error.ErrorCode);
        Assert.False(error.IsTransient);
    }

    [Fact]
    public async Task CreateAsync_ThrowsNamingOption_WhenDataPathIsEmpty()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = " " }));

        Assert.Contains("ChDbOptions.DataPath", error.Message, StringComparison.Ordinal);
    }
}
