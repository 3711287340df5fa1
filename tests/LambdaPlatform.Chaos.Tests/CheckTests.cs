using System.Globalization;
using System.Text;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Scenarios;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Schemas.Events;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>
/// The checks themselves: each one passes on a correct result and fails when the fault it guards against is planted on
/// purpose — a file duplicated in the master folder (also one the platform's own listing would hide), a revenue cell
/// changed in <c>checkout_revenue_batch</c>, a kill that hits an idle process, a victim that had exited on its own, a
/// batch run that fails.
/// </summary>
public sealed class CheckTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly DateTime Day = DateTime.UtcNow.Date.AddDays(-3);
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "chaos-checks-" + Guid.NewGuid().ToString("N")[..8]);

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    // ---- the master dataset check ----

    [Fact]
    public async Task MasterCheck_IsExact_OnACorrectDataset()
    {
        var (root, valid) = await WriteDatasetAsync();

        var result = await MasterDatasetCheck.CompareAsync(root, valid);

        Assert.True(result.Exact, string.Join("\n", result.Problems));
        Assert.Equal(valid.Count, result.Rows);
        Assert.Equal(3, result.Files);
    }

    [Fact]
    public async Task MasterCheck_CountsADuplicatedFile_ThatThePlatformsOwnListingHides()
    {
        var (root, valid) = await WriteDatasetAsync();
        var hour = Path.Combine(root, "master", "events", HourKey.Of(Day.AddHours(5)).RelativePath);
        File.Copy(Path.Combine(hour, "0-0-9.parquet"), Path.Combine(hour, "0-0-4.parquet")); // a re-written overlapping range
        Assert.Equal(3, new MasterDataset(root).ListFiles().Count); // the old check's listing does not see it

        var result = await MasterDatasetCheck.CompareAsync(root, valid);

        Assert.False(result.Exact);
        Assert.Equal(10, result.Duplicated);
        Assert.Equal(1, result.Superseded);
        Assert.Equal(5, result.Misplaced); // offsets 5-9 are outside the range its name claims
    }

    [Fact]
    public async Task MasterCheck_CountsAFileCopiedToAnotherHour_AsDuplicatedAndMisplaced()
    {
        var (root, valid) = await WriteDatasetAsync();
        var from = Path.Combine(root, "master", "events", HourKey.Of(Day.AddHours(5)).RelativePath, "1-0-4.parquet");
        var to = Path.Combine(root, "master", "events", HourKey.Of(Day.AddHours(7)).RelativePath);
        Directory.CreateDirectory(to);
        File.Copy(from, Path.Combine(to, "1-0-4.parquet"));

        var result = await MasterDatasetCheck.CompareAsync(root, valid);

        Assert.Equal(5, result.Duplicated);
        Assert.Equal(5, result.Misplaced);
    }

    [Fact]
    public async Task MasterCheck_CountsMissingOffsets_WhenAFileIsGone()
    {
        var (root, valid) = await WriteDatasetAsync();
        File.Delete(Path.Combine(root, "master", "events", HourKey.Of(Day.AddHours(6)).RelativePath, "0-10-14.parquet"));

        var result = await MasterDatasetCheck.CompareAsync(root, valid);

        Assert.Equal(5, result.Missing);
        Assert.Equal(0, result.Duplicated);
    }

    [Fact]
    public async Task MasterCheck_CountsRowsOfAStrayFile_ThatTheBatchGlobWouldRead()
    {
        var (root, valid) = await WriteDatasetAsync();
        var hour = Path.Combine(root, "master", "events", HourKey.Of(Day.AddHours(5)).RelativePath);
        File.Copy(Path.Combine(hour, "1-0-4.parquet"), Path.Combine(hour, "backup.parquet"));

        var result = await MasterDatasetCheck.CompareAsync(root, valid);

        Assert.Equal(5, result.Duplicated);
        Assert.Equal(5, result.Misplaced);
        Assert.Contains(result.Problems, p => p.Contains("backup.parquet", StringComparison.Ordinal));
    }

    /// <summary>Partition 0 offsets 0-9 in hour 5 and 10-14 in hour 6; partition 1 offsets 0-4 in hour 5.</summary>
    private async Task<(string Root, OffsetSet Valid)> WriteDatasetAsync()
    {
        var root = Path.Combine(_folder, Guid.NewGuid().ToString("N")[..8]);
        var valid = new OffsetSet();
        foreach (var (partition, first, last, hour) in new[] { (0, 0L, 9L, 5), (0, 10L, 14L, 6), (1, 0L, 4L, 5) })
        {
            var buffer = new MasterEventBuffer();
            for (var offset = first; offset <= last; offset++)
            {
                buffer.Add(Guid.NewGuid(), "user.action.page_view", Day.AddHours(hour).AddMinutes(offset), "u1", "web", "1.0", "{}", partition, offset);
                valid.Add(partition, offset);
            }

            var folder = Path.Combine(root, "master", "events", HourKey.Of(Day.AddHours(hour)).RelativePath);
            Directory.CreateDirectory(folder);
            await MasterParquet.WriteFileAsync(buffer, Path.Combine(folder, MasterFile.FileName(partition, new OffsetRange(first, last))));
        }

        return (root, valid);
    }

    // ---- the merged-view check, on clickhouse-server with rows written straight into <view>_batch ----

    [Fact]
    public async Task MergedViewCheck_FindsOneChangedRevenueCell_InTheBatchTable()
    {
        await using var serving = await ServingServer.StartAsync(Path.Combine(_folder, "clickhouse"));
        var expected = Events(600);
        await LoadBatchAsync(serving, expected);

        var exact = await MergedViewCheck.CompareAsync(serving.Client, expected);
        output.WriteLine($"{exact.CellsCompared} cells compared, {exact.CellsWrong} wrong");
        Assert.True(exact.Exact, string.Join("\n", exact.Mismatches));

        var cell = expected.CheckoutRevenue().Keys.OrderBy(k => k.Minute).ThenBy(k => k.Store, StringComparer.Ordinal).First();
        await serving.Client.ExecuteAsync($"ALTER TABLE checkout_revenue_batch DROP PARTITION {Day:yyyyMMdd}");
        await LoadBatchAsync(serving, expected, activity: false, tamper: (key, row) => key == cell ? row with { Revenue = row.Revenue + 0.01m } : row);

        var changed = await MergedViewCheck.CompareAsync(serving.Client, expected);

        Assert.Equal(1, changed.CellsWrong);
        Assert.Equal(0, changed.Lost);
        Assert.Equal(0, changed.Duplicated);
        Assert.Contains("revenue", Assert.Single(changed.Mismatches), StringComparison.Ordinal);
    }

    [Fact]
    public void MergedViewCheck_HoldsEachSideToItsBound()
    {
        var expected = Events(300);
        var (cell, want) = expected.CheckoutRevenue().First(c => c.Value.Buyers >= 1);
        ViewComparison Check(DateTime w, Func<CheckoutCells, CheckoutCells> change)
        {
            string Side(DateTime bucket) => bucket < w ? "batch" : "realtime";
            var checkout = expected.CheckoutRevenue().ToDictionary(c => c.Key, c => new List<string[]> { Fields(c.Key == cell ? change(c.Value) : c.Value, Side(c.Key.Minute)) });
            var activity = expected.Activity().ToDictionary(a => a.Key, a => new List<string[]> { Fields(a.Value.Events, a.Value.Users, Side(a.Key.Hour)) });
            return MergedViewCheck.Compare(expected, w, activity, w, checkout);
        }

        var belowW = Day.AddDays(1);
        var aboveW = Day;
        Assert.Equal(0, Check(belowW, c => c).CellsWrong);
        Assert.Equal(1, Check(belowW, c => c with { P99Cart = c.P99Cart * 1.005 }).CellsWrong); // batch: exact
        Assert.Equal(0, Check(aboveW, c => c with { P99Cart = c.P99Cart * 1.005 }).CellsWrong); // real time: DDSketch 1%
        Assert.Equal(1, Check(aboveW, c => c with { P99Cart = c.P99Cart * 1.02 }).CellsWrong);
        Assert.Equal(1, Check(belowW, c => c with { Buyers = c.Buyers + 1 }).CellsWrong); // batch: exact
        Assert.Equal(1, Check(aboveW, c => c with { Orders = c.Orders + 1 }).CellsWrong); // counts are exact on both sides
        Assert.Equal(1, Check(aboveW, c => c with { Revenue = c.Revenue * 1.000001m }).CellsWrong);
        Assert.Equal(want.Orders, Check(aboveW, c => c with { Orders = 0 }).Lost);
    }

    [Theory]
    [InlineData(1, 1, 1, true)]
    [InlineData(1, 1, 0, false)]
    [InlineData(16, 15, 15, true)] // one register collision (3% of such cells): the sketch of the exact set says 15 too
    [InlineData(16, 16, 15, false)] // 15 is not what the right values give: one was lost on the way
    [InlineData(56, 53, 53, true)]
    [InlineData(1000, 990, 1048, true)] // within 4.875%
    [InlineData(1000, 990, 1050, false)]
    [InlineData(1000, 990, 952, true)]
    [InlineData(1000, 990, 900, false)]
    public void WithinHyperLogLog_AllowsTheStatedBound_OrTheSketchOfTheExactSet(long exact, long sketch, double estimate, bool within) =>
        Assert.Equal(within, MeasureBounds.WithinHyperLogLog(exact, sketch, estimate));

    [Fact]
    public void Sketch_OfTheExactSet_MatchesTheRealTimeEstimateOfSmallSets()
    {
        var users = Enumerable.Range(0, 30).Select(i => "u" + i.ToString("D6", CultureInfo.InvariantCulture)).ToList();

        Assert.InRange(ExpectedViews.Sketch(users), 27, 30);
        Assert.Equal(1, ExpectedViews.Sketch(["u000001", "u000001"]));
    }

    private static string[] Fields(long events, long users, string side) =>
        [events.ToString(CultureInfo.InvariantCulture), users.ToString(CultureInfo.InvariantCulture), side];

    private static string[] Fields(CheckoutCells c, string side) =>
    [
        c.Orders.ToString(CultureInfo.InvariantCulture),
        c.Revenue is { } r ? ((double)r).ToString("R", CultureInfo.InvariantCulture) : "\\N",
        c.Buyers.ToString(CultureInfo.InvariantCulture),
        c.P99Cart is { } p ? p.ToString("R", CultureInfo.InvariantCulture) : "\\N",
        side,
    ];

    private static ExpectedViews Events(int count)
    {
        var expected = new ExpectedViews();
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 5, Users = 40 });
        for (var i = 0; i < count; i++)
        {
            expected.Add(generator.Next(Day.AddHours(10).AddSeconds(i * 7)));
        }

        return expected;
    }

    /// <summary>Writes the exact answer into the batch tables (one day) and moves W past the day, as a batch run would.</summary>
    private static async Task LoadBatchAsync(ServingServer serving, ExpectedViews expected, bool activity = true, Func<CheckoutKey, CheckoutCells, CheckoutCells>? tamper = null)
    {
        static string Number(double? v) => v is { } x ? x.ToString("R", CultureInfo.InvariantCulture) : "NULL";
        static string Text(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
        static long Unix(DateTime t) => (long)(t - DateTime.UnixEpoch).TotalSeconds;
        if (activity)
        {
            var values = expected.Activity().Select(a => string.Create(CultureInfo.InvariantCulture, $"(toDateTime({Unix(a.Key.Hour)}), {Text(a.Key.EventType)}, {Text(a.Key.Source)}, {a.Value.Events}, {a.Value.Users})"));
            await serving.Client.ExecuteAsync("INSERT INTO activity_by_type_batch (bucket, eventType, source, events, users) VALUES " + string.Join(", ", values));
        }

        var rows = new StringBuilder();
        foreach (var (key, cells) in expected.CheckoutRevenue())
        {
            var c = tamper?.Invoke(key, cells) ?? cells;
            rows.Append(rows.Length == 0 ? string.Empty : ", ").Append(CultureInfo.InvariantCulture,
                $"(toDateTime({Unix(key.Minute)}), {Text(key.Store)}, {c.Orders}, {Number((double?)c.Revenue)}, {c.Buyers}, {Number(c.P99Cart)})");
        }

        await serving.Client.ExecuteAsync("INSERT INTO checkout_revenue_batch (bucket, store, orders, revenue, buyers, p99_cart) VALUES " + rows);
        var w = Unix(Day.AddDays(1));
        await serving.Client.ExecuteAsync(string.Create(CultureInfo.InvariantCulture,
            $"INSERT INTO lambda_watermarks (view, watermark, updatedAt) VALUES ('activity_by_type', toDateTime({w}), toDateTime({w})), ('checkout_revenue', toDateTime({w}), toDateTime({w}))"));
    }

    // ---- the kill checks ----

    [Fact]
    public async Task KillVerdict_Fails_WhenTheKillHitsAnIdleProcessOnly()
    {
        await using var broker = ChaosBroker.Start(partitions: 2, sessionTimeout: TimeSpan.FromSeconds(3));
        await using var serving = await ServingServer.StartAsync(Path.Combine(_folder, "clickhouse-idle"));
        var port = OutageProbes.FreePort();
        await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString, "--http", $"127.0.0.1:{port}"],
            Path.Combine(_folder, "speed.log"));
        var probe = new MetricsProbe(port, "lambda_speed");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while ((await probe.ReadAsync(CancellationToken.None)).Partitions.Count == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200); // it owns partitions, but no event ever arrives
        }

        var kills = new KillLog(requiredOnWorkInFlight: 1);
        var kill = await kills.KillAsync("speed", speed, TimeSpan.Zero, probe.ReadAsync, null, CancellationToken.None);
        output.WriteLine(kill.ToString());

        Assert.Equal(137, kill.ExitCode);
        Assert.NotEmpty(kill.Work.Partitions);
        Assert.Equal(0, kill.Work.Buffered);
        Assert.False(kill.OnWorkInFlight);
        Assert.Contains("0 of 1 kills landed on work in flight", kills.Verdict(["speed"]), StringComparison.Ordinal);
    }

    [Fact]
    public async Task KillVerdict_Fails_WhenTheVictimHadExitedOnItsOwn()
    {
        await using var broken = LambdaProcess.Start("speed", ["speed", "--kafka", "127.0.0.1:1"], Path.Combine(_folder, "broken.log"),
            new Dictionary<string, string> { ["LAMBDA_CLICKHOUSE"] = string.Empty }); // exits 1: no ClickHouse given
        Assert.NotEqual(0, await broken.WaitAsync(TimeSpan.FromSeconds(60)));
        var kills = new KillLog(requiredOnWorkInFlight: 0);

        var kill = await kills.KillAsync("speed", broken, TimeSpan.Zero, _ => Task.FromResult(new WorkInFlight([1], 5, "planted", true)), null, CancellationToken.None);

        Assert.False(kill.OnWorkInFlight);
        Assert.Contains("exited on its own", kills.Verdict([]), StringComparison.Ordinal);
    }

    [Fact]
    public async Task KillVerdict_Fails_WhenABatchRunExitsWithAnythingBut0Or137()
    {
        await using var batch = LambdaProcess.Start("batch", ["batch", "run", "--day", "not-a-day", "--data", _folder], Path.Combine(_folder, "batch.log"));
        var exit = await batch.WaitAsync(TimeSpan.FromSeconds(60));
        var kills = new KillLog(requiredOnWorkInFlight: 0);

        kills.BatchFinished(batch, TimeSpan.FromSeconds(1));

        Assert.NotEqual(0, exit);
        Assert.Contains($"exited with {exit}", kills.Verdict([]), StringComparison.Ordinal);
    }

    // ---- measured counts ----

    [Fact]
    public void RequestErrorLedger_CountsOnlyErrorsThatARequestTook()
    {
        var ledger = new RequestErrorLedger();
        var tracked = new List<DevBrokerRequest>();
        void Requests(KafkaApiKey api, int n) => tracked.AddRange(Enumerable.Range(0, n).Select(_ => new DevBrokerRequest(1, api, 0)));

        Requests(KafkaApiKey.Fetch, 3);
        ledger.Pushed(KafkaApiKey.Fetch, 2, tracked); // two errors, then one fetch takes one
        Requests(KafkaApiKey.Fetch, 1);
        ledger.Pushed(KafkaApiKey.Produce, 4, tracked); // four errors, no produce request ever comes
        ledger.Cleared([KafkaApiKey.Fetch, KafkaApiKey.Produce], tracked);
        Requests(KafkaApiKey.Fetch, 5); // after the clear: nothing left to take

        var failed = ledger.Failed(tracked);

        Assert.Equal(1, failed[KafkaApiKey.Fetch]);
        Assert.Equal(0, failed[KafkaApiKey.Produce]);
    }

    [Fact]
    public void MetricsProbe_ReadsAssignedPartitionsAndBufferedEvents_FromPrometheusText()
    {
        const string Text = """
            # TYPE lambda_speed_buffered_events gauge
            lambda_speed_buffered_events{otel_scope_name="LambdaPlatform.Speed"} 412
            # TYPE lambda_speed_assigned_partitions gauge
            lambda_speed_assigned_partitions{otel_scope_name="LambdaPlatform.Speed",partition="3"} 1
            lambda_speed_assigned_partitions{otel_scope_name="LambdaPlatform.Speed",partition="11"} 1
            """;

        var work = MetricsProbe.Parse(Text, "lambda_speed");

        Assert.Equal([3, 11], work.Partitions);
        Assert.Equal(412, work.Buffered);
        Assert.True(work.Busy);
        Assert.False(MetricsProbe.Parse(Text.Replace("412", "0", StringComparison.Ordinal), "lambda_speed").Busy);
    }
}
