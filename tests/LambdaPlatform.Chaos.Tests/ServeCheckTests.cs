using LambdaPlatform.Chaos.Scenarios;
using LambdaPlatform.Chaos.Verification;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>
/// The checks of the serve faults themselves, on made-up histories: each passes on a correct one and fails when the fault it guards
/// against is planted — an API answer that failed, a <c>speedLagSeconds</c> that does not grow while the speed layer is down or does
/// not fall back after it; a recompute that ran twice or was left unfinished across a PostgreSQL outage.
/// </summary>
public sealed class ServeCheckTests
{
    private static readonly DateTime Start = new(2026, 12, 7, 12, 0, 0, DateTimeKind.Utc);
    private static readonly SpeedDownWindow Window = new(Start.AddSeconds(10), Start.AddSeconds(25));

    // ---- the API under load while the speed layer is down ----

    [Fact]
    public void ApiUnderLoadCheck_IsClean_WhenEveryAnswerSucceededAndTheLagTrackedTheOutage()
    {
        var result = ApiUnderLoadCheck.Check(Answers(), Window);

        Assert.True(result.Clean, string.Join("\n", result.Problems));
        Assert.Equal(0, result.Failed);
        Assert.Equal(15 * 50, result.ServedWhileDown);
        Assert.InRange(result.LagGrowthSeconds, result.ClockWhileDownSeconds - 1, result.ClockWhileDownSeconds + 1);
        Assert.NotNull(result.RecoveredAfterSeconds);
        Assert.Equal(20, result.P50Ms, precision: 6);
        Assert.Equal(250, result.P99Ms, precision: 6); // one request in 50 took 250 ms: more than the slowest 1 %
    }

    [Fact]
    public void ApiUnderLoadCheck_Fails_WhenOneAnswerFailed()
    {
        var answers = Answers();
        var i = answers.FindIndex(a => Window.Contains(a.SentAt));
        answers[i] = answers[i] with { Status = 503, SpeedLagSeconds = null, Error = "ClickHouse unavailable" };

        var result = ApiUnderLoadCheck.Check(answers, Window);

        Assert.False(result.Clean);
        Assert.Equal(1, result.Failed);
        Assert.Contains(result.Problems, p => p.StartsWith("1 of ", StringComparison.Ordinal) && p.Contains("status 503", StringComparison.Ordinal));
    }

    [Fact]
    public void ApiUnderLoadCheck_Fails_WhenARequestGotNoAnswer()
    {
        var answers = Answers();
        answers.Add(new ApiAnswer(Start.AddSeconds(12), TimeSpan.FromSeconds(10), 0, null, "timeout"));

        Assert.Equal(1, ApiUnderLoadCheck.Check(answers, Window).Failed);
    }

    [Fact]
    public void ApiUnderLoadCheck_Fails_WhenTheLagDoesNotGrowWhileTheSpeedLayerIsDown()
    {
        // The API answering the lag of the last flush as if it were still fresh: the answers do not say they are stale.
        var answers = Answers(lag: _ => 1.0);

        var result = ApiUnderLoadCheck.Check(answers, Window);

        Assert.False(result.Clean);
        Assert.Contains(result.Problems, p => p.Contains("the answers did not say how stale they were", StringComparison.Ordinal));
    }

    [Fact]
    public void ApiUnderLoadCheck_Fails_WhenTheLagDoesNotFallBackAfterTheRestart()
    {
        var answers = Answers(lag: at => at < Window.KilledAt ? 1.0 : (at - Window.KilledAt).TotalSeconds + 1.0);

        var result = ApiUnderLoadCheck.Check(answers, Window);

        Assert.False(result.Clean);
        Assert.Null(result.RecoveredAfterSeconds);
        Assert.Contains(result.Problems, p => p.StartsWith("speedLagSeconds never fell back", StringComparison.Ordinal));
    }

    [Fact]
    public void ApiUnderLoadCheck_Fails_WhenAnAnswerCarriesNoLag()
    {
        var answers = Answers();
        answers[3] = answers[3] with { SpeedLagSeconds = null };

        Assert.Contains(ApiUnderLoadCheck.Check(answers, Window).Problems, p => p.Contains("carry no speedLagSeconds", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"rows":[],"speedLagSeconds":12.5}""", 12.5)]
    [InlineData("""{"rows":[],"speedLagSeconds":null}""", null)]
    [InlineData("""{"rows":[]}""", null)]
    [InlineData("upstream connect error", null)]
    public void Lag_ReadsSpeedLagSecondsOfAnAnswer(string body, double? expected) =>
        Assert.Equal(expected, SpeedDownUnderLoadScenario.Lag(body));

    /// <summary>
    /// 50 requests a second for 35 s, all 200, 20 ms each but one in 50 at 250 ms; the lag is 1 s while the speed layer runs, grows with
    /// the clock while it is down (from the poll after the kill) and is back to 1 s two seconds after the restart — unless
    /// <paramref name="lag"/> says otherwise.
    /// </summary>
    private static List<ApiAnswer> Answers(Func<DateTime, double>? lag = null)
    {
        lag ??= at => at < Window.KilledAt + TimeSpan.FromSeconds(1) ? 1.0
            : at < Window.RestartedAt + TimeSpan.FromSeconds(2) ? (at - Window.KilledAt).TotalSeconds
            : 1.0;
        return [.. Enumerable.Range(0, 35 * 50).Select(i =>
        {
            var at = Start.AddMilliseconds(i * 20);
            return new ApiAnswer(at, TimeSpan.FromMilliseconds(i % 50 == 49 ? 250 : 20), 200, lag(at));
        })];
    }

    // ---- the scheduler's history across a PostgreSQL outage ----

    private static readonly DateTime Back = Start.AddMinutes(2);

    [Fact]
    public void SchedulerHistoryCheck_IsClean_WhenEveryTickRanOnceAndEveryViewResumed()
    {
        var result = SchedulerHistoryCheck.Check(History(), ["batch-recompute:a", "batch-recompute:b"], Back, Back.AddMinutes(1));

        Assert.True(result.Clean, string.Join("\n", result.Problems));
        Assert.Equal(0, result.RanTwice);
        Assert.Equal(TimeSpan.FromSeconds(16), result.ResumedAfter["batch-recompute:a"]); // the first tick after, started 1 s later
    }

    [Fact]
    public void SchedulerHistoryCheck_CountsAJobThatRanTwice_AndTwoJobsOfOneTick()
    {
        var history = History();
        var first = history[0];
        // Started again while the first start had not ended: a fetch after the invisibility timeout of a job still running.
        history[0] = first with { States = [.. first.States.Take(2), new JobStateEntry("Processing", first.CreatedAt.AddSeconds(40)), .. first.States.Skip(2)] };
        history.Add(history[1] with { JobId = 99 });

        var result = SchedulerHistoryCheck.Check(history, ["batch-recompute:a", "batch-recompute:b"], Back, Back.AddMinutes(1));

        Assert.False(result.Clean);
        Assert.Equal(2, result.RanTwice);
    }

    [Fact]
    public void SchedulerHistoryCheck_FailsAJobLeftEnqueued_AndAViewThatNeverResumed()
    {
        var history = History();
        history.Add(new ScheduledJob(50, "batch-recompute:a", Start.AddSeconds(60), Start.AddSeconds(60), [new JobStateEntry("Enqueued", Start.AddSeconds(60))], InQueue: true));
        history.RemoveAll(j => j.RecurringId == "batch-recompute:b" && j.CreatedAt >= Back);

        var result = SchedulerHistoryCheck.Check(history, ["batch-recompute:a", "batch-recompute:b"], Back, Back.AddMinutes(1));

        Assert.Equal(1, result.Stuck);
        Assert.Null(result.ResumedAfter["batch-recompute:b"]);
        Assert.Contains(result.Problems, p => p.Contains("started no run that succeeded after the storage came back", StringComparison.Ordinal));
    }

    [Fact]
    public void SchedulerHistoryCheck_CountsAStartAfterAFailedAttempt_AsARetry_NotADoubleRun()
    {
        var history = History();
        var first = history[0];
        var at = first.CreatedAt;
        history[0] = first with
        {
            States = [new("Enqueued", at), new("Processing", at.AddSeconds(1)), new("Failed", at.AddSeconds(2), "Npgsql.NpgsqlException: Exception while reading from stream"),
                new("Scheduled", at.AddSeconds(2)), new("Enqueued", at.AddSeconds(20)), new("Processing", at.AddSeconds(20)), new("Succeeded", at.AddSeconds(25))],
        };

        var result = SchedulerHistoryCheck.Check(history, ["batch-recompute:a", "batch-recompute:b"], Back, Back.AddMinutes(1));

        Assert.True(result.Clean, string.Join("\n", result.Problems));
        Assert.Equal(1, result.Retries);
        Assert.Equal(0, result.RanTwice);
        Assert.Contains("Npgsql.NpgsqlException", Assert.Single(result.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public void SchedulerHistoryCheck_CountsAJobLeftEnqueuedOutsideTheQueue_AsDropped_AndOneInTheQueue_AsUnfinished()
    {
        var history = History();
        history.Add(new ScheduledJob(70, "batch-recompute:a", Back.AddSeconds(-32), Back.AddSeconds(-32), [new JobStateEntry("Enqueued", Back.AddSeconds(-32))], InQueue: false));
        history.Add(new ScheduledJob(71, "batch-recompute:b", Back.AddSeconds(-32), Back.AddSeconds(-32), [new JobStateEntry("Enqueued", Back.AddSeconds(-32))], InQueue: true));

        var result = SchedulerHistoryCheck.Check(history, ["batch-recompute:a", "batch-recompute:b"], Back, Back.AddMinutes(1));

        Assert.Equal(1, result.DroppedFromQueue);
        Assert.Equal(1, result.Stuck);
        Assert.Contains(result.Problems, p => p.StartsWith("job 71 ", StringComparison.Ordinal) && p.Contains("did not finish", StringComparison.Ordinal));
    }

    [Fact]
    public void SchedulerHistoryCheck_CountsAJobWithoutAState_AsNeverQueued_NotUnfinished()
    {
        var history = History();
        history.Add(new ScheduledJob(60, "batch-recompute:a", Back.AddSeconds(-20), Back.AddSeconds(-20), []));

        var result = SchedulerHistoryCheck.Check(history, ["batch-recompute:a", "batch-recompute:b"], Back, Back.AddMinutes(1));

        Assert.True(result.Clean, string.Join("\n", result.Problems));
        Assert.Equal(1, result.NeverQueued);
        Assert.Equal(0, result.Stuck);
    }

    [Fact]
    public void CountStorageFailures_CountsEachLoggedNpgsqlException_NotItsInnerOnesOrStack()
    {
        const string Log = """
            fail: Hangfire.Server.Worker[0]
                  Npgsql.NpgsqlException (0x80004005): Failed to connect to 127.0.0.1:5432
                   ---> System.Net.Sockets.SocketException (111): Connection refused
                     at Npgsql.Internal.NpgsqlConnector.Connect(NpgsqlTimeout timeout)
            warn: Hangfire.Server.ServerHeartbeatProcess[0]
                  Npgsql.PostgresException (0x80004005): 57P01: terminating connection due to administrator command
            info: LambdaPlatform.Batch.Recompute.BatchRecompute[0]
                  batch checkout_revenue: Npgsql.NpgsqlException named in a message is not a failure
            """;

        Assert.Equal(2, PostgresOutageScenario.CountStorageFailures(Log));
    }

    /// <summary>Two views, a tick every 15 s for 3 minutes, each job Enqueued → Processing → Succeeded; none during the outage (the first 2 minutes' last 30 s).</summary>
    private static List<ScheduledJob> History()
    {
        var jobs = new List<ScheduledJob>();
        var id = 0L;
        for (var tick = Start; tick < Start.AddMinutes(3); tick = tick.AddSeconds(15))
        {
            if (tick >= Back.AddSeconds(-30) && tick < Back.AddSeconds(15))
            {
                continue;
            }

            foreach (var view in new[] { "batch-recompute:a", "batch-recompute:b" })
            {
                jobs.Add(new ScheduledJob(++id, view, tick, tick,
                    [new JobStateEntry("Enqueued", tick), new JobStateEntry("Processing", tick.AddSeconds(1)), new JobStateEntry("Succeeded", tick.AddSeconds(3))]));
            }
        }

        return jobs;
    }
}
