using Hangfire;
using Hangfire.Storage;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Jobs.Tests;

/// <summary>The recurring jobs fire on their cron, driven by a fake clock: nothing waits for the wall clock.</summary>
[Collection(JobsCollection.Name)]
public sealed class ScheduleTests(JobsFixture fixture)
{
    private static readonly DateOnly Day = new(2024, 5, 1);

    [Fact]
    public async Task RecurringJobs_RunRecomputeAndCompaction_WhenTheFakeClockPassesTheirCron()
    {
        var root = fixture.NewDataRoot();
        var view = fixture.NewCheckoutView(); // batch.schedule "0 * * * *", allowed lateness 1 h
        await JobsFixture.WriteCheckoutsAsync(root, Day, hour: 10, firstOffset: 0, count: 10);
        await JobsFixture.WriteCheckoutsAsync(root, Day, hour: 10, firstOffset: 10, count: 10);
        await JobsFixture.WriteCheckoutsAsync(root, Day, hour: 11, firstOffset: 20, count: 10); // the partition's latest publication
        var hour10 = new MasterDataset(root).HourPath(new HourKey(Day, 10));

        // 2024-05-01 closes at 2024-05-02 01:00 (day end + 1 h lateness), which is also when the view's cron fires.
        var clock = new FakeClock(new DateTimeOffset(2024, 5, 2, 0, 59, 0, TimeSpan.Zero));
        var options = new JobsOptions { PollingInterval = TimeSpan.FromMilliseconds(100) };
        await using var host = await TestHost.StartAsync(fixture.ClickHouse, [view], options, root, clock);

        // Registered against the fake clock: next executions are the cron's next fake-time instants.
        Assert.Equal(new DateTime(2024, 5, 2, 1, 0, 0), Recurring(host.Storage, BatchRecomputeJob.RecurringId(view.Name)).NextExecution);
        Assert.Equal(new DateTime(2024, 5, 2, 0, 30, 0).AddHours(1), Recurring(host.Storage, MasterCompactionJob.RecurringId).NextExecution);

        // Before the cron instant, several scheduler polls go by and nothing runs.
        await Task.Delay(TimeSpan.FromMilliseconds(600));
        Assert.Equal(0L, host.Storage.GetMonitoringApi().SucceededListCount());
        Assert.Equal(new DateTime(1970, 1, 1), await fixture.WatermarkAsync(view));

        clock.Set(new DateTimeOffset(2024, 5, 2, 1, 0, 0, TimeSpan.Zero));
        await JobsFixture.EventuallyAsync(async () => await fixture.WatermarkAsync(view) == new DateTime(2024, 5, 2), "the scheduled recompute advanced W");
        Assert.Equal("30", await fixture.ScalarAsync($"SELECT sum(orders) FROM {new ViewSql(view).BatchTable}"));
        Assert.Equal("165", await fixture.ScalarAsync($"SELECT sum(revenue) FROM {new ViewSql(view).BatchTable}"));
        var recompute = Recurring(host.Storage, BatchRecomputeJob.RecurringId(view.Name));
        Assert.Equal(new DateTime(2024, 5, 2, 1, 0, 0), recompute.LastExecution);
        Assert.Equal(new DateTime(2024, 5, 2, 2, 0, 0), recompute.NextExecution);
        await JobsFixture.EventuallyAsync(() => Task.FromResult(host.Storage.GetMonitoringApi().SucceededListCount() == 1L), () => "the recompute job succeeded; " + Describe(host.Storage));
        Assert.Equal(2, Directory.GetFiles(hour10, "*.parquet").Length);

        clock.Set(new DateTimeOffset(2024, 5, 2, 1, 30, 0, TimeSpan.Zero));
        await JobsFixture.EventuallyAsync(() => Task.FromResult(host.Storage.GetMonitoringApi().SucceededListCount() == 2L), () => "the compaction job succeeded; " + Describe(host.Storage));
        Assert.Equal(["0-0-19.parquet"], Directory.GetFiles(hour10, "*.parquet").Select(Path.GetFileName));
        Assert.Single(Directory.GetFiles(Path.Combine(Path.GetDirectoryName(hour10)!, "hour=11"), "*.parquet"));
    }

    private static string Describe(JobStorage storage)
    {
        var api = storage.GetMonitoringApi();
        var stats = api.GetStatistics();
        var failed = api.FailedJobs(0, 10).Select(j => $"{j.Value.Job?.Method.Name}: {j.Value.ExceptionMessage}");
        var succeeded = api.SucceededJobs(0, 10).Select(j => $"{j.Value.Job?.Method.Name}({string.Join(",", j.Value.Job?.Args ?? [])}) = {j.Value.Result}");
        using var connection = storage.GetConnection();
        var recurring = connection.GetRecurringJobs().Select(j => $"{j.Id}: created {j.CreatedAt:O} last {j.LastExecution:O} next {j.NextExecution:O}");
        return $"recurring [{string.Join("; ", recurring)}], enqueued {stats.Enqueued}, processing {stats.Processing}, succeeded {stats.Succeeded} [{string.Join("; ", succeeded)}], failed {stats.Failed} [{string.Join("; ", failed)}], scheduled {stats.Scheduled}";
    }

    private static RecurringJobDto Recurring(JobStorage storage, string id)
    {
        using var connection = storage.GetConnection();
        return connection.GetRecurringJobs().Single(j => j.Id == id);
    }
}
