using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using Npgsql;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// PostgreSQL — the storage of Hangfire, which schedules the batch recomputes of <c>lambda serve</c> — stopped as by a crash
/// (<c>pg_ctl stop -m immediate</c>) for <see cref="ChaosSettings.PostgresOutage"/>, then started again. The deployment is split as
/// in production: <c>lambda speed</c>, <c>lambda archive</c> and two <c>lambda serve</c> (API and jobs, PostgreSQL storage) against a
/// clickhouse-server, every view recomputed on <see cref="ChaosSettings.ServeSchedule"/>; late events for a closed day keep arriving,
/// so every tick has a day to recompute. The outage starts while a scheduled recompute is in flight (a job in Hangfire's
/// <c>Processing</c> state) and spans ticks.
/// </summary>
/// <remarks>
/// Checked: both serve processes stay up and keep answering the API (it needs ClickHouse only) through the outage; Hangfire's history
/// in PostgreSQL (<see cref="SchedulerHistoryCheck"/>) has one job per (recurring job, tick) and one start per job across both instances,
/// no job left unfinished, and a run of every view that started and succeeded after PostgreSQL came back; once the late events stop and
/// a scheduled run after them has succeeded, every cell of the merged views equals the exact answer and the master dataset holds every
/// valid event once. Injected: the storage operations that failed, as the serve instances logged them (Hangfire's retried processes,
/// state changes and lock calls).
/// </remarks>
public sealed class PostgresOutageScenario : IChaosScenario
{
    private const int Partitions = 4;
    private const string Database = "lambda";
    private static readonly TimeSpan Eventually = OutageProbes.Eventually;

    /// <inheritdoc />
    public string Fault => "postgresql: stopped 30 s under lambda serve's scheduler";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var events = settings.FaultEvents / 2;
        var data = settings.Folder("postgres-outage/data");
        var logs = settings.Folder("postgres-outage/logs");
        var clock = new ElapsedLog(log);
        void Log(string line) => clock.Line(line);
        Log($"postgresql outage: seed {settings.Seed}, {events:N0} events, schedule '{settings.ServeSchedule}', PostgreSQL stopped {settings.PostgresOutage.TotalSeconds:0} s; logs in {logs}");

        await using var postgres = await PostgresServerProcess.StartAsync(cancellationToken);
        await postgres.CreateDatabaseAsync(Database, cancellationToken);
        var jobsDatabase = postgres.ConnectionStringOf(Database);
        using var broker = ChaosBroker.Start(Partitions);
        await using var serving = await ServingServer.StartAsync(settings.Folder("postgres-outage/clickhouse"), cancellationToken);
        var environment = new Dictionary<string, string>
        {
            ["LAMBDA_CLICKHOUSE"] = serving.ConnectionString,
            ["LAMBDA_JOBS__SCHEDULE"] = settings.ServeSchedule,
            ["LAMBDA_JOBS__POLLINGINTERVALSECONDS"] = "1",
            ["Logging__LogLevel__Hangfire"] = "Warning",
        };
        await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", serving.ConnectionString], Path.Combine(logs, "speed.log"), environment);
        await using var archiver = LambdaProcess.Start("archiver", ["archive", "--kafka", broker.BootstrapServers, "--data", data, "--max-file-age", "1"], Path.Combine(logs, "archiver.log"), environment);
        var ports = new[] { OutageProbes.FreePort(), OutageProbes.FreePort() };
        await using var serve1 = StartServe(1);
        await using var serve2 = StartServe(2);
        LambdaProcess[] serves = [serve1, serve2];
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        foreach (var (serve, port) in serves.Zip(ports))
        {
            await OutageProbes.WaitUntilAsync(async () => Alive(serve) && (await OutageProbes.GetAsync(http, $"http://127.0.0.1:{port}/health", cancellationToken)).Status == 200,
                Eventually, $"{serve.Name} answering /health", cancellationToken);
        }

        Log("two serve instances up");
        var expected = new ExpectedViews();
        using var producer = new ChaosProducer(broker.BootstrapServers, expected);
        var notes = new List<string>();
        var errors = new List<string>();
        var random = new Random(settings.Seed);
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed });
        var today = DateTime.UtcNow.Date;
        DateTime[] closed = [today.AddDays(-3), today.AddDays(-2)];
        for (var i = 0; i < events; i++)
        {
            producer.Send(generator.Next(i % 5 == 4 ? DateTime.UtcNow.AddMinutes(-random.Next(0, 50)) : closed[i % 2].AddMilliseconds(random.NextInt64(86_400_000))));
        }

        await Task.Run(() => producer.Flush(TimeSpan.FromMinutes(2)), cancellationToken);
        Log($"{expected.Events:N0} events acknowledged; late events for {closed[1]:yyyy-MM-dd} and current ones keep coming");
        var views = LambdaPlatform.Schemas.Views.ViewLoader.LoadAll(LambdaPlatform.Schemas.Views.ViewLoader.DefaultDirectory(), EventSchemaRegistry.LoadDefault())
            .Select(v => "batch-recompute:" + v.Name).ToList();

        DateTime back;
        var resumed = true;
        int inFlight, sessionsCut;
        long failuresBefore;
        string[] apiDuring;
        await using (var trickle = new Trickle(producer, generator, closed[1], random.Next(), cancellationToken))
        {
            // The schedule works before the fault: a run of every view succeeded.
            await OutageProbes.WaitUntilAsync(async () => { var history = await HistoryAsync(); return views.All(v => Succeeded(history, v) > 0); }, Eventually, "a scheduled run of every view succeeded", cancellationToken);
            Log("every view's scheduled recompute has succeeded once");

            // The outage starts while a recompute is in flight.
            var flight = Stopwatch.StartNew();
            inFlight = 0;
            while (flight.Elapsed < Eventually && (inFlight = await ProcessingAsync()) == 0)
            {
                await Task.Delay(50, cancellationToken);
            }

            sessionsCut = await SessionsAsync();
            failuresBefore = StorageFailures(serves);
            await postgres.StopAsync(cancellationToken);
            var stoppedAt = DateTime.UtcNow;
            Log($"PostgreSQL stopped with {inFlight} recompute(s) in flight and {sessionsCut} sessions of the serve instances open");
            if (inFlight == 0)
            {
                errors.Add("no scheduled recompute was in flight when PostgreSQL was stopped");
            }

            // Through the outage both instances stay up and answer the API from ClickHouse.
            var answers = new List<string>();
            while (DateTime.UtcNow - stoppedAt < settings.PostgresOutage)
            {
                foreach (var (serve, port) in serves.Zip(ports))
                {
                    var (status, body) = Alive(serve) ? await OutageProbes.GetAsync(http, $"http://127.0.0.1:{port}/v1/views/checkout_revenue", cancellationToken) : (-1, "exited");
                    answers.Add(string.Create(CultureInfo.InvariantCulture, $"{serve.Name} {status}"));
                    if (status != 200)
                    {
                        errors.Add(string.Create(CultureInfo.InvariantCulture, $"{serve.Name} answered {status} while PostgreSQL was down: {body[..Math.Min(body.Length, 200)]}"));
                    }
                }

                await Task.Delay(1000, cancellationToken);
            }

            apiDuring = [.. answers];
            await postgres.StartAgainAsync(cancellationToken);
            back = DateTime.UtcNow;
            Log($"PostgreSQL started again after {(back - stoppedAt).TotalSeconds:F1} s; the API answered {answers.Count(a => a.EndsWith(" 200", StringComparison.Ordinal))} of {answers.Count} requests meanwhile");

            // Jobs resume: a run of every view starts after PostgreSQL is back, and succeeds.
            try
            {
                await OutageProbes.WaitUntilAsync(async () =>
                {
                    var history = await HistoryAsync();
                    return views.All(v => history.Any(j => j.RecurringId == v && j.Final == "Succeeded" && j.States.Any(s => s.Name == "Processing" && s.At >= back)));
                }, Eventually, "a run of every view started and succeeded after PostgreSQL came back", cancellationToken);
                Log("every view's recompute ran again after the outage");
            }
            catch (TimeoutException e)
            {
                Log(e.Message);
                resumed = false;
            }
        }

        if (!resumed)
        {
            // Nothing more to wait for: the history says what happened.
            var history = await HistoryAsync();
            var check = SchedulerHistoryCheck.Check(history, views, back, DateTime.UtcNow - TimeSpan.FromSeconds(60));
            return new FaultResult(Fault, (int)(StorageFailures(serves) - failuresBefore), expected.Events, 0, 0, check.RanTwice)
            {
                Notes = [.. history.Select(j => SchedulerHistoryCheck.Describe(j)), .. await StorageStateAsync(), .. serves.Select(s => s.Tail(40))],
                Error = string.Join("\n", [.. errors, .. check.Problems]),
            };
        }

        // The last events are in: once both consumers caught up, one more run of each view after that makes the batch side exact.
        Log($"{expected.Events:N0} events acknowledged; waiting for the speed layer and the archiver");
        using (var speedProgress = new GroupProgress(broker.BootstrapServers, "speed", Topics.Events, Partitions))
        using (var archiveProgress = new GroupProgress(broker.BootstrapServers, "archive", Topics.Events, Partitions))
        {
            await speedProgress.WaitCaughtUpAsync(Eventually, "speed layer (log: " + speed.LogPath + ")", cancellationToken);
            await archiveProgress.WaitCaughtUpAsync(Eventually, "archiver (log: " + archiver.LogPath + ")", cancellationToken);
        }

        var caughtUp = DateTime.UtcNow;
        await OutageProbes.WaitUntilAsync(async () =>
        {
            var history = await HistoryAsync();
            return views.All(v => history.Any(j => j.RecurringId == v && j.Final == "Succeeded" && j.States.Any(s => s.Name == "Processing" && s.At >= caughtUp)));
        }, Eventually, "a run of every view after the last event was archived", cancellationToken);

        // Quiet: every job created so far has finished (or the check names the ones that did not); a job whose creation the outage
        // cut has no state and never will.
        var settled = DateTime.UtcNow;
        try
        {
            await OutageProbes.WaitUntilAsync(async () => (await HistoryAsync()).Where(j => j.CreatedAt < settled && j.States.Count > 0 && (j.InQueue || j.Final != "Enqueued")).All(j => j.Final is "Succeeded" or "Failed" or "Deleted"),
                TimeSpan.FromSeconds(60), "every scheduled job created so far finished", cancellationToken);
        }
        catch (TimeoutException e)
        {
            Log(e.Message);
        }

        var scheduler = SchedulerHistoryCheck.Check(await HistoryAsync(), views, back, settled);
        var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
        var master = await MasterDatasetCheck.CompareAsync(data, producer.ValidOffsets, cancellationToken);
        var failures = StorageFailures(serves) - failuresBefore;
        foreach (var serve in serves)
        {
            if (!Alive(serve))
            {
                errors.Add($"{serve.Name} exited with {serve.ExitCode} (it must ride out the outage):\n{serve.Tail()}");
            }
        }

        errors.AddRange(LambdaProcess.ExitedOnTheirOwn(speed, archiver));

        if (failures <= 0)
        {
            errors.Add("the serve instances logged no failed storage operation: the outage did not reach the scheduler");
        }

        errors.AddRange(scheduler.Problems);
        notes.AddRange(scheduler.Failures);
        if (scheduler.Stuck > 0)
        {
            // What Hangfire's storage and the serve instances say of the unfinished jobs, for whoever reads the report.
            notes.AddRange(await StorageStateAsync());
            notes.AddRange(serves.SelectMany(s => Warnings(s.ReadLog()).Select(l => $"{s.Name}: {l}")).Take(40));
        }

        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"PostgreSQL stopped {settings.PostgresOutage.TotalSeconds:0} s with {inFlight} recompute(s) in flight and {sessionsCut} sessions open; {failures} storage operations failed in the serve instances (logged)"));
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"through the outage both serve instances stayed up; the API answered {apiDuring.Count(a => a.EndsWith(" 200", StringComparison.Ordinal))} of {apiDuring.Length} requests with 200"));
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"Hangfire's history: {scheduler.Jobs} jobs of recurring jobs, {scheduler.Runs} starts, {scheduler.RanTwice} extra runs, {scheduler.Retries} retries after a failed attempt, {scheduler.Stuck} unfinished, {scheduler.DroppedFromQueue} dropped from the queue, {scheduler.NeverQueued} never queued (creation cut by the outage); resumed after PostgreSQL came back: {string.Join(", ", scheduler.ResumedAfter.Select(r => $"{r.Key} {(r.Value is { } t ? t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + " s" : "never")}"))}"));
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"after the last scheduled run: {view.EventsInView:N0} events in the merged view, lost {view.Lost}, duplicated {view.Duplicated}, {view.CellsWrong} of {view.CellsCompared:N0} cells wrong; master dataset {master.Rows:N0} rows in {master.Files} files, missing {master.Missing}, duplicated {master.Duplicated}, misplaced {master.Misplaced}"));
        notes.AddRange(view.Mismatches);
        notes.AddRange(master.Problems);
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"wall time {clock.Elapsed.TotalSeconds:F0} s"));
        return new FaultResult(Fault, (int)Math.Min(int.MaxValue, failures), expected.Events, view.EventsInView, view.Lost + master.Missing, view.Duplicated + master.Duplicated + scheduler.RanTwice)
        {
            Notes = notes,
            Error = errors.Count == 0 ? null : string.Join("\n", errors),
            CellsCompared = view.CellsCompared,
            CellsWrong = view.CellsWrong,
            Figures = new Dictionary<string, double>
            {
                ["outageSeconds"] = settings.PostgresOutage.TotalSeconds,
                ["jobsInFlightAtStop"] = inFlight,
                ["sessionsCut"] = sessionsCut,
                ["scheduledJobs"] = scheduler.Jobs,
                ["jobRuns"] = scheduler.Runs,
                ["jobsRunTwice"] = scheduler.RanTwice,
                ["jobsUnfinished"] = scheduler.Stuck,
                ["jobsNeverQueued"] = scheduler.NeverQueued,
                ["jobsDroppedFromQueue"] = scheduler.DroppedFromQueue,
                ["jobsRetriedAfterFailure"] = scheduler.Retries,
                ["resumedAfterSeconds"] = scheduler.ResumedAfter.Values.Select(t => t?.TotalSeconds ?? -1).DefaultIfEmpty(-1).Max(),
                ["serveRestarts"] = serves.Count(s => s.HasExited),
            },
        };

        LambdaProcess StartServe(int n) => LambdaProcess.Start($"serve-{n}",
            ["serve", "--clickhouse", serving.ConnectionString, "--postgres", jobsDatabase, "--data", data, "--http", string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{ports[n - 1]}")],
            Path.Combine(logs, $"serve-{n}.log"), environment);

        async Task<IReadOnlyList<ScheduledJob>> HistoryAsync()
        {
            try
            {
                return await SchedulerHistoryCheck.ReadAsync(jobsDatabase, cancellationToken: cancellationToken);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                return []; // the schema is not there yet
            }
        }

        async Task<int> ProcessingAsync() => (await HistoryAsync()).Count(j => j.RecurringId.StartsWith("batch-recompute:", StringComparison.Ordinal) && j.Final == "Processing");

        // Hangfire's lock rows and fetched queue entries, for the log of a run that did not resume.
        async Task<List<string>> StorageStateAsync()
        {
            var lines = new List<string>();
            await using var connection = new NpgsqlConnection(jobsDatabase);
            await connection.OpenAsync(cancellationToken);
            foreach (var sql in new[] { "SELECT 'lock ' || resource || ' acquired ' || acquired FROM hangfire.lock", "SELECT 'queue job ' || jobid || ' fetched ' || coalesce(fetchedat::text, '-') FROM hangfire.jobqueue" })
            {
                await using var command = new NpgsqlCommand(sql, connection);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    lines.Add(reader.GetString(0));
                }
            }

            return lines;
        }

        async Task<int> SessionsAsync()
        {
            await using var connection = new NpgsqlConnection(postgres.ConnectionStringOf("postgres"));
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM pg_stat_activity WHERE datname = '{Database}'", connection);
            return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Each warning or error of a log with its message (the line after the category), for the report.</summary>
    private static IEnumerable<string> Warnings(string log)
    {
        var lines = log.Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
        {
            if (lines[i].StartsWith("fail:", StringComparison.Ordinal) || lines[i].StartsWith("warn:", StringComparison.Ordinal))
            {
                yield return lines[i] + " " + lines[i + 1].Trim();
            }
        }
    }

    private static int Succeeded(IReadOnlyList<ScheduledJob> history, string recurringId) => history.Count(j => j.RecurringId == recurringId && j.Final == "Succeeded");

    private static bool Alive(LambdaProcess process) => !process.HasExited;

    /// <summary>Storage operations that failed, as the serve instances logged them (Hangfire's warnings and errors naming PostgreSQL or Npgsql).</summary>
    internal static long StorageFailures(IEnumerable<LambdaProcess> serves) =>
        serves.Sum(s => CountStorageFailures(s.ReadLog()));

    /// <summary>
    /// Storage operations a serve log reports as failed: each logged exception from PostgreSQL's client (its first line, not its
    /// inner exceptions or stack), e.g. a heartbeat, a queue poll, a lock or a state change that could not reach the server.
    /// </summary>
    internal static long CountStorageFailures(string log) =>
        log.Split('\n').LongCount(l => l.TrimStart().StartsWith("Npgsql.NpgsqlException", StringComparison.Ordinal) || l.TrimStart().StartsWith("Npgsql.PostgresException", StringComparison.Ordinal));

    /// <summary>
    /// Late events for a closed day and current ones, about 200 a second, until disposed: every tick of the schedule finds a day to
    /// recompute. Disposing stops and awaits it, then waits until everything sent is acknowledged.
    /// </summary>
    private sealed class Trickle : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop;
        private readonly Task _loop;
        private readonly ChaosProducer _producer;

        public Trickle(ChaosProducer producer, EventGenerator generator, DateTime lateDay, int seed, CancellationToken cancellationToken)
        {
            _producer = producer;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var random = new Random(seed);
            _loop = Task.Run(async () =>
            {
                try
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        for (var i = 0; i < 20; i++)
                        {
                            producer.Send(generator.Next(i % 2 == 0 ? lateDay.AddMilliseconds(random.NextInt64(86_400_000)) : DateTime.UtcNow));
                        }

                        await Task.Delay(100, _stop.Token);
                    }
                }
                catch (OperationCanceledException)
                {
                    // Stopped.
                }
            }, CancellationToken.None);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            await Task.Run(() => _producer.Flush(TimeSpan.FromSeconds(60)), CancellationToken.None);
            _stop.Dispose();
        }
    }
}
