using System.Net;
using Hangfire;
using Hangfire.Common;
using Hangfire.InMemory;
using Hangfire.Storage;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Jobs.Tests;

public sealed class JobsOptionsTests
{
    [Fact]
    public void Validate_AcceptsTheDefaults() => new JobsOptions().Validate();

    [Theory]
    [InlineData("WorkerCount")]
    [InlineData("PollingInterval")]
    [InlineData("CompactionCron")]
    [InlineData("CompactionDays")]
    [InlineData("ViewSchedules")]
    [InlineData("PostgreSqlConnectionString")]
    [InlineData("ApiKey")]
    [InlineData("RunLockTimeout")]
    public void Validate_ThrowsNamingTheSetting_WhenItIsInvalid(string setting)
    {
        var options = setting switch
        {
            "WorkerCount" => new JobsOptions { WorkerCount = 0 },
            "PollingInterval" => new JobsOptions { PollingInterval = TimeSpan.Zero },
            "CompactionCron" => new JobsOptions { CompactionCron = "61 * * * *" },
            "CompactionDays" => new JobsOptions { CompactionDays = 0 },
            "ViewSchedules" => new JobsOptions { ViewSchedules = new Dictionary<string, string> { ["checkout_revenue"] = "every hour" } },
            "PostgreSqlConnectionString" => new JobsOptions { Storage = JobsStorage.PostgreSql },
            "ApiKey" => new JobsOptions { ApiKey = "short" },
            _ => new JobsOptions { RunLockTimeout = TimeSpan.FromSeconds(-1) },
        };

        var e = Assert.ThrowsAny<ArgumentException>(() => options.Validate());

        Assert.Equal(setting, e.ParamName);
        Assert.Contains("JobsOptions." + setting, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddLambdaJobs_Throws_WhenOptionsAreInvalid() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Microsoft.Extensions.DependencyInjection.ServiceCollection()
            .AddLambdaJobs(new JobsOptions { WorkerCount = -1 }, new Batch.Recompute.BatchOptions { DataRoot = "/tmp" }));
}

public sealed class JobsAccessTests
{
    private const string Key = "0123456789abcdef-key";
    private static readonly IPAddress Server = IPAddress.Parse("10.0.0.5");
    private static readonly IPAddress Remote = IPAddress.Parse("203.0.113.9");

    [Theory]
    [InlineData("127.0.0.1", null, null, JobsAccessLevel.Full)]
    [InlineData("::1", null, null, JobsAccessLevel.Full)]
    [InlineData("::ffff:127.0.0.1", null, null, JobsAccessLevel.Full)]
    [InlineData("10.0.0.5", null, null, JobsAccessLevel.Full)] // the server's own address
    [InlineData("203.0.113.9", null, null, JobsAccessLevel.Denied)]
    [InlineData("203.0.113.9", Key, null, JobsAccessLevel.Denied)] // a key sent but none configured authorises nothing
    [InlineData("127.0.0.1", null, Key, JobsAccessLevel.ReadOnly)]
    [InlineData("127.0.0.1", "wrong-key-wrong-key", Key, JobsAccessLevel.ReadOnly)]
    [InlineData("127.0.0.1", Key, Key, JobsAccessLevel.Full)]
    [InlineData("203.0.113.9", Key, Key, JobsAccessLevel.Full)]
    [InlineData("203.0.113.9", "wrong-key-wrong-key", Key, JobsAccessLevel.Denied)]
    [InlineData("203.0.113.9", null, Key, JobsAccessLevel.Denied)]
    public void Evaluate_FollowsTheAccessRule(string remote, string? presented, string? configured, JobsAccessLevel expected) =>
        Assert.Equal(expected, JobsAccess.Evaluate(IPAddress.Parse(remote), Server, presented, configured));

    [Fact]
    public void Evaluate_Denies_WhenThePeerIsUnknown() =>
        Assert.Equal(JobsAccessLevel.Denied, JobsAccess.Evaluate(null, Server, null, null));

    [Fact]
    public void Evaluate_Denies_WhenThePeerIsRemoteAndTheServerAddressUnknown() =>
        Assert.Equal(JobsAccessLevel.Denied, JobsAccess.Evaluate(Remote, null, null, null));
}

/// <summary>Start-up registration of the recurring jobs, against Hangfire's real in-memory storage.</summary>
public sealed class RecurringJobsRegistrarTests : IDisposable
{
    private readonly InMemoryStorage _storage = new();
    private readonly FakeClock _clock = new(new DateTimeOffset(2024, 5, 2, 0, 10, 0, TimeSpan.Zero));
    private readonly IReadOnlyList<ViewDefinition> _views = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), EventSchemaRegistry.LoadDefault());

    public void Dispose() => _storage.Dispose();

    private RecurringJobManager Manager() =>
        new(_storage, JobFilterProviders.Providers, new DefaultTimeZoneResolver(), () => _clock.GetUtcNow().UtcDateTime);

    private List<RecurringJobDto> Jobs()
    {
        using var connection = _storage.GetConnection();
        return connection.GetRecurringJobs();
    }

    [Fact]
    public void Register_AddsAJobPerViewCompactionAndRetention_OnTheirCrons()
    {
        RecurringJobsRegistrar.Register(Manager(), _storage, _views,
            new JobsOptions { ViewSchedules = new Dictionary<string, string> { ["activity_by_type"] = "*/15 * * * *" } });

        var jobs = Jobs().ToDictionary(j => j.Id, j => j.Cron);
        Assert.Equal(new Dictionary<string, string>
        {
            ["batch-recompute:activity_by_type"] = "*/15 * * * *",
            ["batch-recompute:checkout_revenue"] = "0 * * * *",
            ["master-compaction"] = "30 * * * *",
            ["pipeline-state-retention"] = "15 3 * * *",
        }, jobs);
    }

    [Fact]
    public void Register_IsIdempotent_AndRemovesJobsOfViewsThatNoLongerExist()
    {
        var removed = _views.Single(v => v.Name == "checkout_revenue") with { Name = "retired_view" };
        RecurringJobsRegistrar.Register(Manager(), _storage, [.. _views, removed], new JobsOptions());
        var first = Jobs().ToDictionary(j => j.Id, j => j.NextExecution);
        Assert.Contains("batch-recompute:retired_view", first.Keys);

        _clock.Set(new DateTimeOffset(2024, 5, 2, 0, 20, 0, TimeSpan.Zero));
        RecurringJobsRegistrar.Register(Manager(), _storage, _views, new JobsOptions());
        RecurringJobsRegistrar.Register(Manager(), _storage, _views, new JobsOptions());

        var second = Jobs().ToDictionary(j => j.Id, j => j.NextExecution);
        Assert.DoesNotContain("batch-recompute:retired_view", second.Keys);
        Assert.Equal(4, second.Count);
        Assert.All(second, j => Assert.Equal(first[j.Key], j.Value)); // schedules kept, not reset
    }

    [Fact]
    public void Register_ThrowsNamingTheSetting_WhenAnOverrideNamesNoView()
    {
        var e = Assert.Throws<ArgumentException>(() => RecurringJobsRegistrar.Register(Manager(), _storage, _views,
            new JobsOptions { ViewSchedules = new Dictionary<string, string> { ["checkout"] = "0 * * * *" } }));

        Assert.Contains("JobsOptions.ViewSchedules[checkout]", e.Message, StringComparison.Ordinal);
        Assert.Empty(Jobs());
    }

    [Fact]
    public void Register_ThrowsNamingTheViewFile_WhenAViewScheduleIsInvalid()
    {
        var bad = _views[0] with { BatchSchedule = "0 25 * * *" };

        var e = Assert.Throws<ArgumentException>(() => RecurringJobsRegistrar.Register(Manager(), _storage, [bad], new JobsOptions()));

        Assert.Contains("batch.schedule", e.Message, StringComparison.Ordinal);
        Assert.Contains(bad.SourceFile, e.Message, StringComparison.Ordinal);
        Assert.Empty(Jobs());
    }
}
