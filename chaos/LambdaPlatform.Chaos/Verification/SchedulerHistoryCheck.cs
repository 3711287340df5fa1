using System.Globalization;
using Npgsql;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>One state a Hangfire job entered (Enqueued, Processing, Succeeded, Failed, Scheduled…), in order.</summary>
/// <param name="Name">The state's name.</param>
/// <param name="At">When it was entered (UTC, PostgreSQL's record).</param>
/// <param name="Detail">For a Failed state, the exception's type and message; otherwise null.</param>
public readonly record struct JobStateEntry(string Name, DateTime At, string? Detail = null);

/// <summary>A job a recurring job created: its id, recurring job, the tick that created it and every state it went through.</summary>
/// <param name="JobId">Hangfire's job id.</param>
/// <param name="RecurringId">The recurring job, e.g. <c>batch-recompute:checkout_revenue</c>.</param>
/// <param name="Tick">The schedule's occurrence that created it (Hangfire's <c>Time</c> parameter), UTC.</param>
/// <param name="CreatedAt">When the job was created (UTC).</param>
/// <param name="States">Its states in the order entered.</param>
/// <param name="InQueue">Whether it has a row in Hangfire's queue (<c>jobqueue</c>): only then can a worker fetch it.</param>
public sealed record ScheduledJob(long JobId, string RecurringId, DateTime Tick, DateTime CreatedAt, IReadOnlyList<JobStateEntry> States, bool InQueue = false)
{
    /// <summary>How often a worker started it: its <c>Processing</c> states.</summary>
    public int Runs => States.Count(s => s.Name == "Processing");

    /// <summary>
    /// Starts while an earlier start had not ended (no Succeeded, Failed or Deleted state between them): the job running twice, as a
    /// fetch after the invisibility timeout of a job whose worker still runs it would.
    /// </summary>
    public int OverlappingStarts
    {
        get
        {
            var open = false;
            var overlapping = 0;
            foreach (var state in States)
            {
                if (state.Name == "Processing")
                {
                    overlapping += open ? 1 : 0;
                    open = true;
                }
                else if (state.Name is "Succeeded" or "Failed" or "Deleted")
                {
                    open = false;
                }
            }

            return overlapping;
        }
    }

    /// <summary>Starts after an attempt that ended Failed: Hangfire's automatic retry (<c>[AutomaticRetry]</c>), one run after another.</summary>
    public int Retries => Math.Max(0, Runs - 1 - OverlappingStarts);

    /// <summary>Its last state, or "none".</summary>
    public string Final => States.Count == 0 ? "none" : States[^1].Name;
}

/// <summary>What Hangfire's history says about the schedule across an outage of its storage.</summary>
/// <param name="Jobs">Jobs created by recurring jobs.</param>
/// <param name="Runs">Starts of those jobs (Processing states).</param>
/// <param name="RanTwice">Extra runs: more than one job for one (recurring job, tick), or a start of a job while an earlier start had not ended.</param>
/// <param name="Stuck">Jobs created before the settle time that entered a state and did not end Succeeded (left Processing would run again after the invisibility timeout; left Enqueued, it waits for nobody).</param>
/// <param name="DroppedFromQueue">Jobs left Enqueued with no row in the queue: no worker can fetch them again. Seen when PostgreSQL stopped
/// while a worker moved a fetched job to Processing: Hangfire's worker gives up the state change and removes the job from the queue
/// ("forget a job … when timeout exceeded"), leaving its last state Enqueued. That tick's recompute is skipped; the next tick recomputes the same days.</param>
/// <param name="NeverQueued">Jobs with no state at all: the outage cut their creation between the job's row and its first state, so no worker can ever
/// see them and Hangfire expires them; that tick's recompute is skipped, and the next tick recomputes the same days.</param>
/// <param name="ResumedAfter">Per expected recurring job: from the storage's return to the first start of a run that then succeeded, or null when none did.</param>
/// <param name="Problems">Every violation, for the log.</param>
/// <param name="Retries">Starts after a failed attempt (Hangfire's automatic retry, not a double run); <paramref name="Failures"/> says why each attempt failed.</param>
/// <param name="Failures">Each failed attempt: the job and the exception, for the log.</param>
public sealed record SchedulerComparison(int Jobs, int Runs, int RanTwice, int Stuck, int DroppedFromQueue, int NeverQueued, int Retries, IReadOnlyList<string> Failures,
    IReadOnlyDictionary<string, TimeSpan?> ResumedAfter, IReadOnlyList<string> Problems)
{
    /// <summary>No tick ran twice, no job ran twice or was left unfinished, and every expected recurring job ran again after the outage.</summary>
    public bool Clean => Problems.Count == 0;
}

/// <summary>
/// The scheduler's history in Hangfire's PostgreSQL storage, read directly (tables <c>job</c>, <c>jobparameter</c>, <c>state</c> of
/// Hangfire.PostgreSql), and the rules it must satisfy across an outage of that storage: one job per (recurring job, tick) and one start
/// per job (none runs twice, across every instance); every job finished (none left <c>Processing</c>, which Hangfire would start again
/// after its invisibility timeout, nor <c>Failed</c>); every expected recurring job started a run that succeeded after the storage came back.
/// </summary>
public static class SchedulerHistoryCheck
{
    /// <summary>Every job of every recurring job in the storage, with its states.</summary>
    public static async Task<IReadOnlyList<ScheduledJob>> ReadAsync(string connectionString, string schema = "hangfire", CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand($"""
            SELECT j.id, r.value, t.value, j.createdat, s.name, s.createdat, s.data::text,
                   EXISTS (SELECT 1 FROM {schema}.jobqueue q WHERE q.jobid = j.id)
            FROM {schema}.job j
            JOIN {schema}.jobparameter r ON r.jobid = j.id AND r.name = 'RecurringJobId'
            LEFT JOIN {schema}.jobparameter t ON t.jobid = j.id AND t.name = 'Time'
            LEFT JOIN {schema}.state s ON s.jobid = j.id
            ORDER BY j.id, s.id
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var jobs = new List<(long Id, string Recurring, DateTime Tick, DateTime Created, List<JobStateEntry> States, bool InQueue)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var id = reader.GetInt64(0);
            if (jobs.Count == 0 || jobs[^1].Id != id)
            {
                var created = DateTime.SpecifyKind(reader.GetDateTime(3), DateTimeKind.Utc);
                var tick = reader.IsDBNull(2) ? created : Tick(reader.GetString(2), created);
                jobs.Add((id, reader.GetString(1).Trim('"'), tick, created, [], reader.GetBoolean(7)));
            }

            if (!reader.IsDBNull(4))
            {
                var name = reader.GetString(4);
                var detail = name == "Failed" && !reader.IsDBNull(6) ? FailureOf(reader.GetString(6)) : null;
                jobs[^1].States.Add(new JobStateEntry(name, DateTime.SpecifyKind(reader.GetDateTime(5), DateTimeKind.Utc), detail));
            }
        }

        return [.. jobs.Select(j => new ScheduledJob(j.Id, j.Recurring, j.Tick, j.Created, j.States, j.InQueue))];
    }

    /// <summary>
    /// Checks <paramref name="jobs"/> against the rules (see <see cref="SchedulerHistoryCheck"/>). <paramref name="expected"/> are the
    /// recurring jobs that must run again after the storage came back at <paramref name="back"/>; jobs created before
    /// <paramref name="settled"/> must have finished.
    /// </summary>
    public static SchedulerComparison Check(IReadOnlyList<ScheduledJob> jobs, IReadOnlyCollection<string> expected, DateTime back, DateTime settled)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(expected);
        var problems = new List<string>();
        var twice = 0;
        foreach (var tick in jobs.GroupBy(j => (j.RecurringId, j.Tick)).Where(g => g.Count() > 1))
        {
            twice += tick.Count() - 1;
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"{tick.Key.RecurringId} has {tick.Count()} jobs for the tick {tick.Key.Tick:HH:mm:ss} (jobs {string.Join(", ", tick.Select(j => j.JobId))})"));
        }

        int stuck = 0, dropped = 0, neverQueued = 0;
        foreach (var job in jobs)
        {
            if (job.OverlappingStarts > 0)
            {
                twice += job.OverlappingStarts;
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"{Name(job)} started again while a start had not ended ({job.Runs} starts): {States(job)}"));
            }

            if (job.States.Count == 0)
            {
                neverQueued++;
            }
            else if (job.Final == "Enqueued" && !job.InQueue && job.CreatedAt < settled)
            {
                dropped++;
            }
            else if (job.CreatedAt < settled && job.Final != "Succeeded")
            {
                stuck++;
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"{Name(job)} did not finish: {States(job)}"));
            }
        }

        var resumed = new Dictionary<string, TimeSpan?>(StringComparer.Ordinal);
        foreach (var id in expected.Order(StringComparer.Ordinal))
        {
            var first = jobs.Where(j => j.RecurringId == id && j.Final == "Succeeded")
                .SelectMany(j => j.States.Where(s => s.Name == "Processing" && s.At >= back))
                .Select(s => (DateTime?)s.At)
                .Min();
            resumed[id] = first - back;
            if (first is null)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"{id} started no run that succeeded after the storage came back at {back:HH:mm:ss}"));
            }
        }

        var failures = jobs.SelectMany(j => j.States.Where(s => s.Name == "Failed").Select(s => string.Create(CultureInfo.InvariantCulture, $"{Name(j)} failed at {s.At:HH:mm:ss.f}: {s.Detail}"))).ToList();
        return new SchedulerComparison(jobs.Count, jobs.Sum(j => j.Runs), twice, stuck, dropped, neverQueued, jobs.Sum(j => j.Retries), failures, resumed, problems);
    }

    /// <summary>A job and its states on one line, for the log.</summary>
    public static string Describe(ScheduledJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return Name(job) + ": " + States(job);
    }

    private static string Name(ScheduledJob job) => string.Create(CultureInfo.InvariantCulture, $"job {job.JobId} ({job.RecurringId}, tick {job.Tick:HH:mm:ss})");

    private static string States(ScheduledJob job) => string.Join(" → ", job.States.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Name} {s.At:HH:mm:ss.f}")));

    /// <summary>The exception of a Failed state's data (Hangfire's <c>ExceptionType</c> and <c>ExceptionMessage</c>).</summary>
    private static string? FailureOf(string data)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(data);
            var root = document.RootElement;
            string? Field(string name) => root.ValueKind == System.Text.Json.JsonValueKind.Object && root.TryGetProperty(name, out var v) ? v.ToString() : null;
            return $"{Field("ExceptionType")}: {Field("ExceptionMessage")}";
        }
        catch (System.Text.Json.JsonException)
        {
            return data;
        }
    }

    /// <summary>Hangfire's <c>Time</c> parameter: Unix seconds, as a JSON number or string.</summary>
    private static DateTime Tick(string value, DateTime fallback) =>
        long.TryParse(value.Trim('"'), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) ? DateTime.UnixEpoch.AddSeconds(seconds) : fallback;
}
