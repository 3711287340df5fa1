using LambdaPlatform.Batch.Master;

namespace LambdaPlatform.Batch.Tests;

[Collection(ArchiveCollection.Name)]
public sealed class CompactionTests(ArchiveFixture fixture)
{
    [Fact]
    public async Task CompactDay_KeepsEveryRowAndTheProvenOffsets_WhenMergingManySmallFiles()
    {
        var (root, day, _) = await ArchiveManySmallFilesAsync(seed: 51);
        var dataset = new MasterDataset(root);
        var before = await TestFiles.ReadAllAsync(root);
        var filesBefore = TestFiles.Glob(root).Count;
        var provenBefore = dataset.ProvenOffsets();
        var sequenceBefore = dataset.CurrentSequence();

        var results = await new MasterCompactor(dataset).CompactDayAsync(day);

        var after = await TestFiles.ReadAllAsync(root);
        Assert.True(results.Sum(r => r.Outputs.Count) >= 2);
        Assert.True(TestFiles.Glob(root).Count < filesBefore / 3, $"{filesBefore} files before, {TestFiles.Glob(root).Count} after");
        Assert.Equal(Multiset(before), Multiset(after));
        TestFiles.AssertNoOffsetTwice(after);
        AssertSameCoverage(provenBefore, dataset.ProvenOffsets());
        Assert.Equal([day], dataset.DaysChangedSince(sequenceBefore));

        // A second run finds nothing more to merge (only the latest publication is left apart).
        var again = await new MasterCompactor(dataset).CompactDayAsync(day);
        Assert.All(again, r => Assert.Empty(r.Outputs));
    }

    [Fact]
    public async Task CompactHour_NeverLosesOrDuplicatesForListFiles_WhenItCrashesBetweenRenameAndDelete()
    {
        var (root, day, _) = await ArchiveManySmallFilesAsync(seed: 52);
        var dataset = new MasterDataset(root);
        var before = await TestFiles.ReadAllAsync(root);
        var hour = dataset.ListFiles(day)[0].Hour;
        var crashing = new MasterCompactor(dataset, new MasterCompactorOptions { AfterPublish = _ => throw new IOException("simulated crash") });

        await Assert.ThrowsAsync<IOException>(() => crashing.CompactHourAsync(hour));

        // The merged file and its inputs are both on disk: a raw glob sees rows twice (the batch layer dedupes by
        // event id), ListFiles hides the inputs, and no row is missing either way.
        var raw = await TestFiles.ReadAllAsync(root);
        Assert.True(raw.Count > before.Count);
        var listed = await TestFiles.ReadAsync(dataset.ListFiles(day).Select(f => f.Path));
        Assert.Equal(Multiset(before), Multiset(listed));

        var result = await new MasterCompactor(dataset).CompactHourAsync(hour);
        Assert.True(result.SupersededDeleted >= 2);
        Assert.Equal(Multiset(before), Multiset(await TestFiles.ReadAllAsync(root)));
    }

    [Fact]
    public async Task Archiver_ResumesAfterCompaction_WithoutWritingAnOffsetTwice()
    {
        var (root, day, topic) = await ArchiveManySmallFilesAsync(seed: 53, topicPartitions: 1);
        await new MasterCompactor(new MasterDataset(root)).CompactDayAsync(day);
        var before = await TestFiles.ReadAllAsync(root);

        // A new group has no committed offset: the archiver must resume from what the (compacted) files prove.
        var more = ArchiveFixture.Events(seed: 54, count: 300, from: day.ToDateTime(new TimeOnly(6, 0), DateTimeKind.Utc), to: day.ToDateTime(new TimeOnly(7, 0), DateTimeKind.Utc));
        fixture.Produce(topic, [.. more.Select(e => ((string?)e.UserId, e.Json))]);
        var archiver = await fixture.StartAsync(fixture.Options(topic, root));
        await ArchiveFixture.PollAsync(() => archiver.EventsArchived >= more.Count, "new events archived");
        await ArchiveFixture.StopAsync(archiver);

        var after = await TestFiles.ReadAllAsync(root);
        TestFiles.AssertNoOffsetTwice(after);
        Assert.Equal(before.Count + more.Count, after.Count);
    }

    private async Task<(string Root, DateOnly Day, string Topic)> ArchiveManySmallFilesAsync(int seed, int topicPartitions = 2)
    {
        var topic = fixture.NewTopic(topicPartitions);
        var root = fixture.NewFolder();
        var start = DateTime.UtcNow.Date.AddDays(-2).AddHours(3);
        var events = ArchiveFixture.Events(seed, count: 4_000, from: start, to: start.AddHours(2));
        var options = fixture.Options(topic, root) with { MaxFileEvents = 150 };
        var archiver = await fixture.StartAsync(options);
        fixture.Produce(topic, [.. events.Select(e => ((string?)e.UserId, e.Json))]);
        await ArchiveFixture.PollAsync(() => archiver.EventsArchived == events.Count, "archived");
        await ArchiveFixture.StopAsync(archiver);
        Assert.True(TestFiles.Glob(root).Count >= 20);
        return (root, DateOnly.FromDateTime(start), topic);
    }

    private static List<string> Multiset(IEnumerable<Row> rows) =>
        [.. rows.Select(r => $"{r.EventId}|{r.EventType}|{r.Timestamp:O}|{r.UserId}|{r.Source}|{r.Version}|{r.Payload}|{r.Partition}|{r.Offset}").Order(StringComparer.Ordinal)];

    private static void AssertSameCoverage(IReadOnlyDictionary<int, PartitionCoverage> expected, IReadOnlyDictionary<int, PartitionCoverage> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (p, coverage) in expected)
        {
            Assert.Equal(coverage.Ranges, actual[p].Ranges);
            Assert.Equal(coverage.MaxLastOffset, actual[p].MaxLastOffset);
        }
    }
}
