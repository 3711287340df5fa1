using System.Globalization;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Batch.Tests;

[Collection(ArchiveCollection.Name)]
public sealed class MasterDatasetTests(ArchiveFixture fixture)
{
    private static readonly DateTime Noon = new(2024, 5, 1, 12, 0, 0, DateTimeKind.Utc);

    [Theory]
    [InlineData("3-100-250.parquet", true, 3, 100, 250)]
    [InlineData("0-0-0.parquet", true, 0, 0, 0)]
    [InlineData("3-250-100.parquet", false, 0, 0, 0)]
    [InlineData(".3-100-250.parquet.0f1e.tmp", false, 0, 0, 0)]
    [InlineData("3-100.parquet", false, 0, 0, 0)]
    [InlineData("-1-100-250.parquet", false, 0, 0, 0)]
    [InlineData("3-100-250.parquet.tmp", false, 0, 0, 0)]
    public void TryParseName_AcceptsOnlyPublishedNames(string name, bool ok, int partition, long first, long last)
    {
        Assert.Equal(ok, MasterFile.TryParseName(name, out var p, out var range));
        if (ok)
        {
            Assert.Equal((partition, new OffsetRange(first, last)), (p, range));
            Assert.Equal(name, MasterFile.FileName(p, range));
        }
    }

    [Fact]
    public void Coverage_MergesAdjacentRangesPerPartition_AndNamesTheLatestPublication()
    {
        var h1 = new HourKey(new DateOnly(2024, 5, 1), 1);
        var h2 = new HourKey(new DateOnly(2024, 5, 1), 2);
        var files = new[]
        {
            new MasterFile("a", h1, 0, new OffsetRange(0, 99)),
            new MasterFile("b", h2, 0, new OffsetRange(0, 99)),
            new MasterFile("c", h1, 0, new OffsetRange(100, 199)),
            new MasterFile("d", h2, 0, new OffsetRange(300, 399)),
            new MasterFile("e", h1, 1, new OffsetRange(5, 9)),
        };

        var coverage = MasterDataset.Coverage(files);

        Assert.Equal([new OffsetRange(0, 199), new OffsetRange(300, 399)], coverage[0].Ranges);
        Assert.Equal((399L, 300L), (coverage[0].MaxLastOffset, coverage[0].LatestFirstOffset));
        Assert.True(coverage[0].Covers(new OffsetRange(50, 150)));
        Assert.False(coverage[0].Covers(new OffsetRange(150, 350)));
        Assert.Equal([new OffsetRange(5, 9)], coverage[1].Ranges);
    }

    [Fact]
    public async Task ListHour_HidesFilesInsideAnotherFilesRange_AndIgnoresTemporaryFiles()
    {
        var dataset = new MasterDataset(fixture.NewFolder());
        var hour = HourKey.Of(Noon);
        await WriteAsync(dataset, hour, 0, new OffsetRange(0, 9));
        await WriteAsync(dataset, hour, 0, new OffsetRange(10, 19));
        await WriteAsync(dataset, hour, 0, new OffsetRange(0, 19)); // a merged file whose inputs are not deleted yet
        await WriteAsync(dataset, hour, 1, new OffsetRange(0, 9));
        await File.WriteAllTextAsync(Path.Combine(dataset.HourPath(hour), ".0-20-29.parquet.abc.tmp"), "partial");

        Assert.Equal(4, dataset.ListHour(hour, includeSuperseded: true).Count);
        Assert.Equal(
            ["0-0-19.parquet", "1-0-9.parquet"],
            dataset.ListFiles(DateOnly.FromDateTime(Noon)).Select(f => Path.GetFileName(f.Path)));
    }

    [Fact]
    public async Task MarkChanged_StampsEachDayWithANewSequence()
    {
        var dataset = new MasterDataset(fixture.NewFolder());
        var d1 = new DateOnly(2024, 5, 1);
        var d2 = new DateOnly(2024, 5, 2);
        Assert.Equal(0, dataset.CurrentSequence());
        Assert.Empty(dataset.DaysChangedSince(0));

        Assert.Equal(1, await dataset.MarkChangedAsync([d1, d2, d1]));
        var seen = dataset.CurrentSequence();
        Assert.Equal(2, await dataset.MarkChangedAsync([d2]));

        Assert.Equal([d1, d2], dataset.DaysChangedSince(0));
        Assert.Equal([d2], dataset.DaysChangedSince(seen));
        Assert.Equal(2, dataset.GetDayState(d2)!.Sequence);
        Assert.Null(dataset.GetDayState(new DateOnly(2024, 5, 3)));

        // Concurrent writers serialize on the state lock: every change gets its own number.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => dataset.MarkChangedAsync([d1.AddDays(i)])));
        Assert.Equal(10, dataset.CurrentSequence());
    }

    [Fact]
    public async Task Files_AreReadByChDb_WithUuidAndDateTime64Columns_AndThePayloadLossless()
    {
        var dataset = new MasterDataset(fixture.NewFolder());
        var hour = HourKey.Of(Noon);
        var buffer = new MasterEventBuffer();
        var id = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        const string Payload = "{\"q\":\"caf\\u00e9 \\\"x\\\"\",\"n\":1.50,\"emoji\":\"😀\"}";
        buffer.Add(id, "user.action.search", Noon.AddMilliseconds(123), "u000001", "web", "1", Payload, 0, 7);
        buffer.Add(Guid.NewGuid(), "user.action.page_view", Noon.AddMinutes(5), "u000002", "ios", "1", "{}", 0, 8);
        Durable.CreateDirectory(dataset.HourPath(hour));
        await MasterParquet.WriteFileAsync(buffer, dataset.FilePath(hour, 0, new OffsetRange(7, 8)));
        await File.WriteAllTextAsync(Path.Combine(dataset.HourPath(hour), ".0-9-9.parquet.abc.tmp"), "not parquet");

        // Parquet.Net's own reader, through the independent test reader.
        var rows = await TestFiles.ReadAllAsync(dataset.Root);
        Assert.Equal((id, Noon.AddMilliseconds(123), Payload), (rows[0].EventId, rows[0].Timestamp, rows[0].Payload));

        // chDB, as the batch layer reads the files (one data path per process: this is the only chDB test here).
        var chPath = fixture.NewFolder();
        await using var ch = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = chPath });
        var glob = dataset.DayGlob(hour.Date);
        await using var stream = await ch.QueryAsync(
            $"SELECT toTypeName(eventId), toTypeName(timestamp), toTypeName(kafkaOffset), eventId, timestamp, payload, JSONExtractString(payload, 'emoji'), count() OVER () " +
            $"FROM file('{glob}', Parquet) ORDER BY kafkaOffset LIMIT 1", "TabSeparatedRaw");
        using var reader = new StreamReader(stream);
        var fields = (await reader.ReadToEndAsync()).TrimEnd('\n').Split('\t');
        Assert.Equal(
            ["UUID", "DateTime64(3, 'UTC')", "Int64", id.ToString(), "2024-05-01 12:00:00.123", Payload, "😀", "2"],
            fields);
    }

    private static async Task WriteAsync(MasterDataset dataset, HourKey hour, int partition, OffsetRange range)
    {
        var buffer = new MasterEventBuffer();
        for (var o = range.First; o <= range.Last; o++)
        {
            buffer.Add(Guid.NewGuid(), "user.action.search", Noon, "u1", "web", "1", "{\"o\":" + o.ToString(CultureInfo.InvariantCulture) + "}", partition, o);
        }

        Durable.CreateDirectory(dataset.HourPath(hour));
        await MasterParquet.WriteFileAsync(buffer, dataset.FilePath(hour, partition, range));
    }
}
