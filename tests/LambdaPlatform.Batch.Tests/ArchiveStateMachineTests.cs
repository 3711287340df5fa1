using System.Globalization;
using System.Text;
using CsCheck;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Batch.Master;
using Xunit.Abstractions;

namespace LambdaPlatform.Batch.Tests;

/// <summary>
/// The exactly-once protocol of one partition's archive (<see cref="PartitionArchive"/> driven as the archiver drives it,
/// publications run by the real <c>ArchivePublisher</c>) against generated histories: records valid or not across hours
/// and days, consumption in bursts, age ticks, crashes at every step of a publication (after each rename, after the day
/// marks, after the archived-through record, before and after the commit), disk errors that are retried, graceful
/// revocations and lost partitions handed to a new owner, and restarts. The disk and the Kafka commit are simulated, so
/// thousands of histories run in a second; the invariants are checked at every record, commit and at the end.
/// </summary>
public sealed class ArchiveStateMachineTests(ITestOutputHelper output)
{
    private const int Partition = 3;

    private static readonly HourKey[] HourKeys =
    [
        new(new DateOnly(2026, 3, 1), 22), new(new DateOnly(2026, 3, 1), 23), new(new DateOnly(2026, 3, 2), 0), new(new DateOnly(2026, 3, 2), 1),
    ];

    [Fact]
    public async Task PartitionArchive_ArchivesEveryValidOffsetExactlyOnce_WhenCrashesRebalancesAndDiskErrorsHitEveryStep()
    {
        await Histories.SampleAsync(async h =>
        {
            var world = new World(h);
            await world.RunAsync();
            world.AssertFinalState();
        }, iter: 4_000, threads: 1, seed: Environment.GetEnvironmentVariable("LAMBDA_ARCHIVE_SEED"), writeLine: output.WriteLine, print: h => h.ToString());
    }

    [Fact]
    public void Resume_ReReadsTheLatestRange_WhenItsCommitIsBehindTheFiles()
    {
        var files = new[] { File(HourKeys[0], 0, 9), File(HourKeys[1], 0, 9), File(HourKeys[0], 10, 19) };

        var archive = PartitionArchive.Resume(Partition, committed: 10, files);

        Assert.Equal(10, archive.ResumeAt);
        Assert.Equal(new OffsetRange(10, 19), archive.Repairing);
        Assert.Equal([HourKeys[0]], archive.RepairPresent);
        Assert.Equal(Handover.Drop, archive.Handover); // the repair is repeated by whoever owns the partition next
    }

    [Fact]
    public void Resume_TrustsTheCommit_WhenItIsPastEveryFile()
    {
        var archive = PartitionArchive.Resume(Partition, committed: 20, [File(HourKeys[0], 0, 9), File(HourKeys[0], 10, 19)]);

        Assert.Equal(20, archive.ResumeAt);
        Assert.Null(archive.Repairing);
    }

    [Fact]
    public void Resume_UsesTheGroupDefault_WhenThereIsNeitherCommitNorFile()
    {
        var archive = PartitionArchive.Resume(Partition, committed: null, [File(HourKeys[0], 0, 9) with { Partition = Partition + 1 }]);

        Assert.Null(archive.ResumeAt);
        Assert.Null(archive.Repairing);
    }

    [Fact]
    public void Repair_WritesOnlyTheMissingHours_AndPublishesWhenItsLastOffsetIsRead()
    {
        var archive = PartitionArchive.Resume(Partition, committed: null, [File(HourKeys[0], 5, 7)]);

        Assert.Equal(RecordOutcome.AlreadyPublished, archive.Accept(5, HourKeys[0], 0));
        Assert.Equal(RecordOutcome.Buffered, archive.Accept(6, HourKeys[1], 0));
        Assert.False(archive.ShouldPublish(maxFileEvents: 1_000));
        Assert.Equal(RecordOutcome.Invalid, archive.Accept(7, null, 0));
        Assert.True(archive.ShouldPublish(maxFileEvents: 1_000));
        Assert.Equal(Handover.Drop, archive.Handover); // a repair is never published half-way on a rebalance
        Assert.Equal([HourKeys[1]], archive.HoursToWrite);
        Assert.Equal(new OffsetRange(5, 7), archive.PublicationRange);
        Assert.Equal([HourKeys[0].Date], archive.DaysChanged);
        Assert.True(archive.RecordsArchive);
        Assert.Equal(8, archive.CommitOffset);
        Assert.Throws<InvalidOperationException>(() => archive.Accept(9, HourKeys[0], 0));
    }

    [Fact]
    public void InvalidOnlyRange_StaysOpen_SoPublishedRangesStayContiguous()
    {
        var archive = PartitionArchive.Resume(Partition, committed: 0, []);
        archive.Accept(0, null, 10);
        archive.Accept(1, null, 10);
        Assert.True(archive.IsDue(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5)));
        Assert.False(archive.RecordsArchive);
        archive.Completed(20);

        archive.Accept(2, HourKeys[2], 30);

        Assert.Equal(new OffsetRange(0, 2), archive.PublicationRange);
        Assert.Equal(20, archive.OpenedAt);
    }

    private static MasterFile File(HourKey hour, long first, long last) =>
        new($"{hour.RelativePath}/{MasterFile.FileName(Partition, new OffsetRange(first, last))}", hour, Partition, new OffsetRange(first, last));

    // ---- generated histories ----

    private static Gen<History> Histories =>
        from log in Gen.Frequency((6, Gen.Int[0, HourKeys.Length - 1].Select(h => (int?)h)), (1, Gen.Const((int?)null))).Array[0, 40]
        from ops in Gen.Frequency(
            (10, Gen.Int[1, 6].Select(n => new Op(OpKind.Consume, n))),
            (3, Gen.Const(new Op(OpKind.Tick, 0))),
            (1, Gen.Const(new Op(OpKind.Revoke, 0))),
            (1, Gen.Const(new Op(OpKind.Lose, 0))),
            (1, Gen.Const(new Op(OpKind.Crash, 0)))).Array[0, 30]
        from faults in Gen.Frequency(
            (6, Gen.Const(new PublicationFault(FaultKind.None, 0))),
            (2, Gen.Int[1, 6].Select(s => new PublicationFault(FaultKind.CrashAfterStep, s))),
            (1, Gen.Int[1, 6].Select(s => new PublicationFault(FaultKind.DiskErrorAtStep, s))),
            (1, Gen.Const(new PublicationFault(FaultKind.CrashBeforeCommit, 0))),
            (1, Gen.Const(new PublicationFault(FaultKind.CrashAfterCommit, 0)))).Array[0, 12]
        from maxFileEvents in Gen.Int[1, 8]
        select new History(log, ops, faults, maxFileEvents);

    private enum OpKind
    {
        Consume,
        Tick,
        Revoke,
        Lose,
        Crash,
    }

    private enum FaultKind
    {
        None,
        CrashAfterStep,
        DiskErrorAtStep,
        CrashBeforeCommit,
        CrashAfterCommit,
    }

    private sealed record Op(OpKind Kind, int Count);

    private sealed record PublicationFault(FaultKind Kind, int Step);

    /// <summary>A log of records (the hour index of a valid event, or null for an invalid record), what happens, and each publication's fault in turn.</summary>
    private sealed record History(int?[] Log, Op[] Ops, PublicationFault[] Faults, int MaxFileEvents)
    {
        public override string ToString()
        {
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"maxFileEvents {MaxFileEvents}; log [{string.Join(' ', Log.Select(r => r is { } h ? h.ToString(CultureInfo.InvariantCulture) : "x"))}]");
            sb.Append(CultureInfo.InvariantCulture, $"; ops [{string.Join(' ', Ops.Select(o => o.Kind == OpKind.Consume ? "c" + o.Count.ToString(CultureInfo.InvariantCulture) : o.Kind.ToString()))}]");
            sb.Append(CultureInfo.InvariantCulture, $"; faults [{string.Join(' ', Faults.Select(f => f.Kind + (f.Step > 0 ? "@" + f.Step.ToString(CultureInfo.InvariantCulture) : string.Empty)))}]");
            return sb.ToString();
        }
    }

    private sealed class SimulatedCrash : Exception
    {
        public SimulatedCrash()
            : base("simulated crash")
        {
        }

        public SimulatedCrash(string message)
            : base(message)
        {
        }

        public SimulatedCrash(string message, Exception inner)
            : base(message, inner)
        {
        }
    }

    /// <summary>A disk of files named by (hour, range), a Kafka commit, and one archiver process at a time.</summary>
    private sealed class World(History history)
    {
        private readonly Dictionary<(HourKey Hour, OffsetRange Range), SortedSet<long>> _disk = [];
        private readonly Dictionary<HourKey, List<long>> _buffered = [];
        private readonly ArchivePublisher _publisher = new(TimeProvider.System, TimeSpan.FromTicks(1), TimeSpan.FromTicks(10));
        private PartitionArchive? _archive;
        private long _position;
        private long? _committed;
        private long _archivedThrough = -1;
        private int _nextFault;
        private long _now;

        public async Task RunAsync()
        {
            foreach (var op in history.Ops)
            {
                try
                {
                    await StepAsync(op);
                }
                catch (SimulatedCrash)
                {
                    _archive = null; // the process died: memory is gone, the disk and the commit stay
                }
            }

            // A last owner reads to the end without faults and stops gracefully.
            _archive = null;
            _nextFault = history.Faults.Length;
            Assign();
            while (_position < history.Log.Length)
            {
                await ConsumeOneAsync();
            }

            if (_archive!.Pending)
            {
                await PublishAsync(retry: false);
            }
        }

        public void AssertFinalState()
        {
            var log = history.Log;
            var where = new Dictionary<long, List<(HourKey, OffsetRange)>>();
            foreach (var (name, rows) in _disk)
            {
                foreach (var offset in rows)
                {
                    Assert.True(offset >= name.Range.First && offset <= name.Range.Last, $"offset {offset} outside its file's range {name.Range}");
                    Assert.True(log[offset] is { } h && HourKeys[h] == name.Hour, $"offset {offset} in the file of {name.Hour}, but it is {(log[offset] is { } x ? HourKeys[x].ToString() : "invalid")}");
                    (where.TryGetValue(offset, out var list) ? list : where[offset] = []).Add(name);
                }
            }

            for (var offset = 0; offset < log.Length; offset++)
            {
                var count = where.TryGetValue(offset, out var list) ? list.Count : 0;
                Assert.True(log[offset] is null ? count == 0 : count == 1, $"offset {offset} ({(log[offset] is null ? "invalid" : "valid")}) is in {count} files");
            }

            var ranges = _disk.Keys.Select(k => k.Range).Distinct().ToList();
            foreach (var a in ranges)
            {
                foreach (var b in ranges.Where(b => b != a))
                {
                    Assert.True(a.Last < b.First || b.Last < a.First, $"published ranges {a} and {b} overlap: a range was written again");
                }
            }

            if (log.Length > 0)
            {
                Assert.Equal(log.Length, _committed);
            }

            if (Array.FindLastIndex(log, r => r is not null) is var lastValid and >= 0)
            {
                Assert.True(_archivedThrough >= lastValid, $"archived through {_archivedThrough}, but the last valid offset is {lastValid}");
            }
        }

        private async Task StepAsync(Op op)
        {
            if (_archive is null)
            {
                Assign();
            }

            switch (op.Kind)
            {
                case OpKind.Consume:
                    for (var i = 0; i < op.Count && _position < history.Log.Length; i++)
                    {
                        await ConsumeOneAsync();
                    }

                    break;
                case OpKind.Tick:
                    _now += 1_000;
                    if (_archive!.IsDue(TimeSpan.FromTicks(_now - _archive.OpenedAt), TimeSpan.FromTicks(1_000)))
                    {
                        await PublishAsync(retry: true);
                    }

                    break;
                case OpKind.Revoke:
                    if (_archive!.Handover == Handover.PublishFirst)
                    {
                        try
                        {
                            await PublishAsync(retry: false);
                        }
                        catch (IOException)
                        {
                            // The archiver logs it; the next owner re-reads the range.
                        }
                    }

                    _archive = null;
                    break;
                case OpKind.Lose:
                    _archive = null;
                    break;
                default:
                    throw new SimulatedCrash();
            }
        }

        private void Assign()
        {
            var files = _disk.Keys.Select(k => new MasterFile(k.Hour + "/" + MasterFile.FileName(Partition, k.Range), k.Hour, Partition, k.Range)).ToList();
            _archive = PartitionArchive.Resume(Partition, _committed, files);
            _position = _archive.ResumeAt ?? 0;
            _buffered.Clear();
            if (_archive.Repairing is { } r)
            {
                Assert.Equal(r.First, _position);
            }
        }

        private async Task ConsumeOneAsync()
        {
            var archive = _archive!;
            var offset = _position;
            if (archive.FinishesRepairBefore(offset))
            {
                await PublishAsync(retry: true);
            }

            var hour = history.Log[offset] is { } h ? HourKeys[h] : (HourKey?)null;
            if (archive.Accept(offset, hour, _now) == RecordOutcome.Buffered)
            {
                (_buffered.TryGetValue(hour!.Value, out var rows) ? rows : _buffered[hour.Value] = []).Add(offset);
            }

            _position++;
            if (archive.ShouldPublish(history.MaxFileEvents))
            {
                await PublishAsync(retry: true);
            }
        }

        private async Task PublishAsync(bool retry)
        {
            var archive = _archive!;
            var fault = _nextFault < history.Faults.Length ? history.Faults[_nextFault++] : new PublicationFault(FaultKind.None, 0);
            var files = new Files(this, fault);
            await _publisher.PublishAsync(archive, files, retry, null, CancellationToken.None);
            if (fault.Kind == FaultKind.CrashBeforeCommit)
            {
                throw new SimulatedCrash();
            }

            var next = archive.CommitOffset;
            for (var offset = 0L; offset < next; offset++)
            {
                Assert.True(history.Log[offset] is null || OnDisk(offset), $"committing {next}, but valid offset {offset} is in no file");
            }

            _committed = next;
            if (fault.Kind == FaultKind.CrashAfterCommit)
            {
                throw new SimulatedCrash();
            }

            _buffered.Clear();
            archive.Completed(_now);
        }

        private int?[] Log => history.Log;

        private bool OnDisk(long offset) => _disk.Values.Any(rows => rows.Contains(offset));

        /// <summary>The publication's file-system steps, with the history's fault at its step.</summary>
        private sealed class Files(World world, PublicationFault fault) : IArchiveFiles
        {
            private int _step;
            private bool _failed;

            public Task<(MasterFile File, long Bytes)> WriteAsync(int partition, HourKey hour, OffsetRange range, CancellationToken cancellationToken)
            {
                Before();
                var rows = new SortedSet<long>(world._buffered[hour]);
                if (world._disk.TryGetValue((hour, range), out var existing))
                {
                    // Files never change: the existing one is kept, so it must hold the same records.
                    Assert.True(existing.SetEquals(rows), $"{hour} {range} exists with [{string.Join(',', existing)}], and would be written again with [{string.Join(',', rows)}]");
                }
                else
                {
                    world._disk[(hour, range)] = rows;
                }

                After();
                return Task.FromResult((new MasterFile(hour + "/" + MasterFile.FileName(partition, range), hour, partition, range), (long)rows.Count));
            }

            public Task MarkChangedAsync(IReadOnlyList<DateOnly> days, CancellationToken cancellationToken)
            {
                Before();
                After();
                return Task.CompletedTask;
            }

            public Task RecordArchivedAsync(int partition, long through, CancellationToken cancellationToken)
            {
                Before();
                for (var offset = 0L; offset <= through; offset++)
                {
                    Assert.True(world.Log[offset] is null || world.OnDisk(offset), $"recording archived through {through}, but valid offset {offset} is in no file");
                }

                world._archivedThrough = Math.Max(world._archivedThrough, through);
                After();
                return Task.CompletedTask;
            }

            private void Before()
            {
                _step++;
                if (fault.Kind == FaultKind.DiskErrorAtStep && fault.Step == _step && !_failed)
                {
                    _failed = true;
                    throw new IOException("simulated disk error");
                }
            }

            private void After()
            {
                if (fault.Kind == FaultKind.CrashAfterStep && fault.Step == _step)
                {
                    throw new SimulatedCrash();
                }
            }
        }
    }
}
