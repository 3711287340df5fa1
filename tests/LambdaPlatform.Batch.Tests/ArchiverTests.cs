using System.Globalization;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Batch.Master;

namespace LambdaPlatform.Batch.Tests;

[Collection(ArchiveCollection.Name)]
public sealed class ArchiverTests(ArchiveFixture fixture)
{
    [Fact]
    public async Task Archiver_WritesEveryValidEventExactlyOnce_WithDuplicatesAcrossHoursAndDays()
    {
        const int Partitions = 3;
        var topic = fixture.NewTopic(Partitions);
        var root = fixture.NewFolder();
        var day = DateTime.UtcNow.Date.AddDays(-3);
        var events = ArchiveFixture.Events(seed: 11, count: 6_000, from: day.AddHours(20), to: day.AddDays(2).AddHours(3));
        var messages = new List<(string?, byte[])>();
        var invalid = 0;
        for (var i = 0; i < events.Count; i++)
        {
            messages.Add((events[i].UserId, events[i].Json));
            if (i % 10 == 0)
            {
                messages.Add((events[i].UserId, events[i].Json)); // a duplicate: same event id, archived again
            }

            if (i % 150 == 0)
            {
                messages.Add((events[i].UserId, ArchiveFixture.Invalid(i)));
                invalid++;
            }
        }

        var produced = fixture.Produce(topic, messages);
        var valid = produced.Where(p => !p.Value.AsSpan().StartsWith("{\"eventId\": \"broken"u8)).ToList();
        var options = fixture.Options(topic, root);
        var archiver = await fixture.StartAsync(options);
        await ArchiveFixture.PollAsync(() => archiver.EventsArchived >= valid.Count && archiver.InvalidEvents >= invalid, "all events archived");
        await ArchiveFixture.StopAsync(archiver);

        var rows = await TestFiles.ReadAllAsync(root);
        TestFiles.AssertNoOffsetTwice(rows);
        Assert.Equal(valid.Count, rows.Count);
        Assert.Equal(invalid, archiver.InvalidEvents);
        var byPosition = rows.ToDictionary(r => (r.Partition, r.Offset));
        foreach (var p in valid)
        {
            var row = byPosition[(p.Partition, p.Offset)];
            var expected = TestFiles.Expected(p.Value);
            Assert.Equal(expected, (row.EventId, row.EventType, row.Timestamp, row.UserId, row.Source, row.Version, row.Payload));
        }

        // Duplicates are archived as they came: the events produced twice appear twice.
        Assert.Equal(600, rows.GroupBy(r => r.EventId).Count(g => g.Count() == 2));

        // Each file sits in the folder of its rows' event hour and names their partition and an offset range holding them.
        foreach (var file in rows.GroupBy(r => r.File))
        {
            Assert.True(MasterFile.TryParseName(Path.GetFileName(file.Key), out var partition, out var range));
            var folder = Path.GetRelativePath(Path.Combine(root, "master", "events"), Path.GetDirectoryName(file.Key)!).Replace('\\', '/');
            Assert.All(file, r => Assert.Equal(HourKey.Of(r.Timestamp).RelativePath, folder));
            Assert.All(file, r => Assert.Equal(partition, r.Partition));
            Assert.All(file, r => Assert.True(range.First <= r.Offset && r.Offset <= range.Last));
        }

        Assert.Equal(3, new MasterDataset(root).ListDays().Count);

        // Files prove every offset up to the end of each partition, and the group committed exactly past it.
        var proven = new MasterDataset(root).ProvenOffsets();
        var committed = fixture.Committed(topic, options.GroupId, Partitions);
        for (var p = 0; p < Partitions; p++)
        {
            Assert.Equal(produced.Where(x => x.Partition == p).Max(x => x.Offset) + 1, committed[p]);
            var range = Assert.Single(proven[p].Ranges);
            Assert.Equal(0, range.First);
            Assert.True(range.Last >= valid.Where(x => x.Partition == p).Max(x => x.Offset));
        }
    }

    [Fact]
    public async Task Archiver_WritesEachOffsetOnce_WhenKilledBetweenRenameAndCommit()
    {
        const int Partitions = 2;
        var topic = fixture.NewTopic(Partitions);
        var root = fixture.NewFolder();
        var group = "archive-" + Guid.NewGuid().ToString("N")[..12];

        // Events alternate between two hours, so every publication writes two files (one per hour folder).
        var hour = DateTime.UtcNow.Date.AddDays(-1).AddHours(5);
        var a = ArchiveFixture.Events(seed: 21, count: 2_000, from: hour, to: hour.AddMinutes(50));
        var b = ArchiveFixture.Events(seed: 22, count: 2_000, from: hour.AddHours(1), to: hour.AddHours(1).AddMinutes(50));
        var messages = a.Zip(b).SelectMany(x => new[] { (x.First.UserId, x.First.Json), (x.Second.UserId, x.Second.Json) })
            .Select(x => ((string?)x.UserId, x.Json)).ToList();
        var produced = fixture.Produce(topic, messages);

        // Run 1: dies after a whole publication is renamed into place, before its offsets are committed.
        var publications = 0;
        var run1 = await fixture.StartAsync(fixture.Options(topic, root, group) with
        {
            Faults = new ArchiverFaults { BeforeCommit = _ => Crash(++publications == 3) },
        });
        await AssertCrashedAsync(run1);
        var afterRun1 = await TestFiles.ReadAllAsync(root);
        Assert.NotEmpty(afterRun1);
        TestFiles.AssertNoOffsetTwice(afterRun1);
        var dataset = new MasterDataset(root);
        var committed = fixture.Committed(topic, group, Partitions);
        Assert.Contains(dataset.ProvenOffsets().Values, c => committed[c.Partition] <= c.MaxLastOffset); // published, not committed

        // Run 2: dies between the renames of one publication (one hour's file in place, the other not).
        var renames = 0;
        var firstHour = HourKey.Of(hour);
        // Each run cuts publications at other sizes (as time-based cuts would), so a re-read does not happen to
        // reproduce the same file names: only resuming from what the files prove avoids overlapping ranges.
        var run2 = await fixture.StartAsync(fixture.Options(topic, root, group) with
        {
            MaxFileEvents = 700,
            Faults = new ArchiverFaults { AfterRename = file => Crash(++renames >= 3 && file.Hour == firstHour) },
        });
        await AssertCrashedAsync(run2);
        var afterRun2 = await TestFiles.ReadAllAsync(root);
        Assert.True(afterRun2.Count > afterRun1.Count);
        TestFiles.AssertNoOffsetTwice(afterRun2);
        var cutShort = dataset.ProvenOffsets().Values.Single(c =>
            dataset.ListFiles().Count(f => f.Partition == c.Partition && f.Offsets.Last == c.MaxLastOffset) == 1);

        // Run 3: no faults; completes the cut-short publication and archives the rest.
        var run3 = await fixture.StartAsync(fixture.Options(topic, root, group) with { MaxFileEvents = 1_300 });
        await ArchiveFixture.PollAsync(() => TestFiles.Glob(root).Count > 0 && fixture.Committed(topic, group, Partitions)
            .All(c => c.Value == produced.Where(p => p.Partition == c.Key).Max(p => p.Offset) + 1), "all offsets committed");
        await ArchiveFixture.StopAsync(run3);

        var rows = await TestFiles.ReadAllAsync(root);
        TestFiles.AssertNoOffsetTwice(rows);
        Assert.Equal(2, dataset.ListFiles().Count(f => f.Partition == cutShort.Partition && f.Offsets.Last == cutShort.MaxLastOffset
            && f.Offsets.First == cutShort.LatestFirstOffset)); // the missing hour was completed under the same name
        Assert.Equal(produced.Count, rows.Count);
        Assert.Equal(
            produced.Select(p => (p.Partition, p.Offset, TestFiles.Expected(p.Value).EventId)).Order(),
            rows.Select(r => (r.Partition, r.Offset, r.EventId)).Order());
    }

    [Fact]
    public async Task Archiver_ReportsUnhealthyWithoutCommitting_ThenRecovers_WhenTheDiskFails()
    {
        var topic = fixture.NewTopic(1);
        var folder = fixture.NewFolder();
        var blocker = Path.Combine(folder, "blocker");
        await File.WriteAllTextAsync(blocker, "a file where the dataset folder should be");
        var root = Path.Combine(blocker, "root"); // creating folders under a regular file fails, also for root
        var events = ArchiveFixture.Events(seed: 31, count: 500, from: DateTime.UtcNow.AddHours(-2), to: DateTime.UtcNow.AddHours(-1));
        var produced = fixture.Produce(topic, [.. events.Select(e => ((string?)e.UserId, e.Json))]);
        var options = fixture.Options(topic, root);
        var archiver = await fixture.StartAsync(options);

        await ArchiveFixture.PollAsync(() => !archiver.Health.Healthy, "unhealthy");
        Assert.Contains("retrying", archiver.Health.Status, StringComparison.Ordinal);
        Assert.Equal(0, archiver.EventsArchived);
        Assert.True(fixture.Committed(topic, options.GroupId, 1)[0] < 0, "nothing may be committed while the files are not written");

        File.Delete(blocker);
        await ArchiveFixture.PollAsync(() => archiver.Health.Healthy && archiver.EventsArchived == produced.Count, "recovered");
        await ArchiveFixture.StopAsync(archiver);

        var rows = await TestFiles.ReadAllAsync(root);
        TestFiles.AssertNoOffsetTwice(rows);
        Assert.Equal(produced.Select(p => p.Offset).Order(), rows.Select(r => r.Offset).Order());
        Assert.Equal(produced.Max(p => p.Offset) + 1, fixture.Committed(topic, options.GroupId, 1)[0]);
    }

    [Fact]
    public async Task DaysChangedSince_ReportsAnOldDay_WhenALateEventLandsInIt()
    {
        var topic = fixture.NewTopic(2);
        var root = fixture.NewFolder();
        var dayOne = DateTime.UtcNow.Date.AddDays(-5);
        var dayTwo = dayOne.AddDays(1);
        var events = ArchiveFixture.Events(seed: 41, count: 400, from: dayOne.AddHours(12), to: dayTwo.AddHours(12));
        var archiver = await fixture.StartAsync(fixture.Options(topic, root));
        try
        {
            fixture.Produce(topic, [.. events.Select(e => ((string?)e.UserId, e.Json))]);
            await ArchiveFixture.PollAsync(() => archiver.EventsArchived == events.Count, "first events archived");
            var dataset = archiver.Dataset;
            Assert.Equal([DateOnly.FromDateTime(dayOne), DateOnly.FromDateTime(dayTwo)], dataset.DaysChangedSince(0));

            // A batch run reads the counter before it lists files, then recomputes; afterwards nothing is dirty.
            var batchRun = dataset.CurrentSequence();
            Assert.True(batchRun > 0);
            Assert.Empty(dataset.DaysChangedSince(batchRun));

            // A late event for day one arrives: day one is dirty again, day two is not.
            var late = ArchiveFixture.Events(seed: 42, count: 1, from: dayOne.AddHours(3), to: dayOne.AddHours(4));
            fixture.Produce(topic, [(late[0].UserId, late[0].Json)]);
            await ArchiveFixture.PollAsync(() => archiver.EventsArchived == events.Count + 1, "late event archived");
            Assert.Equal([DateOnly.FromDateTime(dayOne)], dataset.DaysChangedSince(batchRun));
            Assert.True(dataset.GetDayState(DateOnly.FromDateTime(dayOne))!.Sequence > batchRun);
            Assert.Contains(dataset.ListFiles(DateOnly.FromDateTime(dayOne)), f => f.Hour.Hour == 3);
        }
        finally
        {
            await ArchiveFixture.StopAsync(archiver);
        }
    }

    [Fact]
    public void Options_NameTheBadSetting()
    {
        var ok = new ArchiverOptions { BootstrapServers = "x:1", RootPath = "/tmp/x" };
        Assert.Same(ok, ok.Validate());
        Assert.Equal("BootstrapServers", Assert.Throws<ArgumentException>(() => new ArchiverOptions { RootPath = "/x" }.Validate()).ParamName);
        Assert.Equal("RootPath", Assert.Throws<ArgumentException>(() => new ArchiverOptions { BootstrapServers = "x:1" }.Validate()).ParamName);
        Assert.Equal("MaxFileEvents", Assert.Throws<ArgumentOutOfRangeException>(() => (ok with { MaxFileEvents = 0 }).Validate()).ParamName);
        Assert.Equal("MaxFileAge", Assert.Throws<ArgumentOutOfRangeException>(() => (ok with { MaxFileAge = TimeSpan.Zero }).Validate()).ParamName);
        Assert.Equal("MaxBufferedEvents", Assert.Throws<ArgumentOutOfRangeException>(() => (ok with { MaxBufferedEvents = 10 }).Validate()).ParamName);
        Assert.Equal("Compression", Assert.Throws<ArgumentOutOfRangeException>(() => (ok with { Compression = (MasterCompression)7 }).Validate()).ParamName);
    }

    private static void Crash(bool now)
    {
        if (now)
        {
            throw new SimulatedCrashException();
        }
    }

    private static async Task AssertCrashedAsync(Archiver archiver)
    {
        var task = archiver.ExecuteTask!;
        var finished = await Task.WhenAny(task, Task.Delay(ArchiveFixture.Deadline));
        Assert.Same(task, finished);
        await Assert.ThrowsAsync<SimulatedCrashException>(() => task);
        Assert.False(archiver.Health.Healthy);
        await ArchiveFixture.StopAsync(archiver);
    }

    private sealed class SimulatedCrashException : Exception
    {
        public SimulatedCrashException()
            : base("simulated crash " + DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture))
        {
        }
    }
}
