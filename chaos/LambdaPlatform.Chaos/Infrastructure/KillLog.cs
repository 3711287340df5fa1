using System.Globalization;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>One SIGKILL of a platform process, as recorded at the moment it was sent.</summary>
/// <param name="Victim">"speed", "archiver" or "batch".</param>
/// <param name="Pid">Its process id.</param>
/// <param name="At">Time into the scenario.</param>
/// <param name="Work">What it had in hand, read just before the signal (and, for a batch run, confirmed after it).</param>
/// <param name="ExitCode">How it ended: 137 when the SIGKILL ended it.</param>
/// <param name="Error">Why the kill does not count (it had exited on its own), or null.</param>
public sealed record KillRecord(string Victim, int Pid, TimeSpan At, WorkInFlight Work, int ExitCode, string? Error)
{
    /// <summary>The kill ended a process that had work in flight.</summary>
    public bool OnWorkInFlight => Error is null && ExitCode == 137 && Work.Busy;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{At.TotalSeconds,6:F1}s kill -9 {Victim} (pid {Pid}, exit {ExitCode}): {Work}{(Error is null ? string.Empty : " — " + Error)}");
}

/// <summary>
/// The kills of a scenario and the rules they must meet: at least <see cref="RequiredOnWorkInFlight"/> of them on work in
/// flight, each victim kind at least twice, no victim that had exited on its own, and no batch run ending with anything
/// but 0 or 137. Thread-safe.
/// </summary>
/// <param name="requiredOnWorkInFlight">Kills that must land on work in flight.</param>
public sealed class KillLog(int requiredOnWorkInFlight)
{
    private readonly Lock _lock = new();
    private readonly List<KillRecord> _kills = [];
    private readonly List<string> _violations = [];

    /// <summary>Kills that must land on work in flight.</summary>
    public int RequiredOnWorkInFlight { get; } = requiredOnWorkInFlight;

    /// <summary>The kills so far.</summary>
    public IReadOnlyList<KillRecord> Kills
    {
        get
        {
            lock (_lock)
            {
                return [.. _kills];
            }
        }
    }

    /// <summary>Kills that landed on work in flight so far.</summary>
    public int OnWorkInFlight
    {
        get
        {
            lock (_lock)
            {
                return _kills.Count(k => k.OnWorkInFlight);
            }
        }
    }

    /// <summary>Rule violations seen so far (a victim exited on its own, a batch run failed).</summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_lock)
            {
                return [.. _violations];
            }
        }
    }

    /// <summary>
    /// Reads <paramref name="process"/>'s work in flight through <paramref name="probe"/>, SIGKILLs it at once, and records
    /// the kill. A process that had already exited is not killed: it is recorded as a violation.
    /// </summary>
    /// <param name="victim">"speed", "archiver" or "batch".</param>
    /// <param name="process">The process.</param>
    /// <param name="at">Time into the scenario.</param>
    /// <param name="probe">Reads its work in flight.</param>
    /// <param name="confirm">Optional: re-judges the reading after the kill (e.g. the batch run's staging table is still there).</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    public async Task<KillRecord> KillAsync(string victim, LambdaProcess process, TimeSpan at, Func<CancellationToken, Task<WorkInFlight>> probe,
        Func<WorkInFlight, CancellationToken, Task<WorkInFlight>>? confirm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(process);
        ArgumentNullException.ThrowIfNull(probe);
        if (process.HasExited)
        {
            return Record(new KillRecord(victim, process.Id, at, WorkInFlight.Unknown("not running"), process.ExitCode, $"{victim} had exited on its own with code {process.ExitCode}:\n{process.Tail(10)}"));
        }

        var work = await probe(cancellationToken);
        var exitedBefore = process.HasExited;
        await process.KillAsync();
        var exit = process.ExitCode;
        if (confirm is not null)
        {
            work = await confirm(work, cancellationToken);
        }

        string? error = exitedBefore || exit != 137 ? $"{victim} exited on its own with code {exit} before the SIGKILL:\n{process.Tail(10)}" : null;
        return Record(new KillRecord(victim, process.Id, at, work, exit, error));
    }

    /// <summary>Records a batch run that ended before its kill: fine with exit 0, a violation otherwise.</summary>
    public void BatchFinished(LambdaProcess batch, TimeSpan took)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.ExitCode is not (0 or 137))
        {
            lock (_lock)
            {
                _violations.Add(string.Create(CultureInfo.InvariantCulture, $"a batch run (pid {batch.Id}) exited with {batch.ExitCode} after {took.TotalSeconds:F1} s:\n{batch.Tail(15)}"));
            }
        }
    }

    /// <summary>A process that should be running had exited on its own.</summary>
    public void Exited(LambdaProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        lock (_lock)
        {
            _violations.Add(string.Create(CultureInfo.InvariantCulture, $"{process.Name} (pid {process.Id}) exited on its own with code {process.ExitCode}:\n{process.Tail(10)}"));
        }
    }

    /// <summary>Why the kills fail the run, or null when they meet every rule.</summary>
    /// <param name="victims">Victim kinds that must each be killed on work in flight at least twice.</param>
    public string? Verdict(IReadOnlyCollection<string> victims)
    {
        ArgumentNullException.ThrowIfNull(victims);
        var problems = new List<string>(Violations);
        var kills = Kills;
        problems.AddRange(kills.Where(k => k.Error is not null).Select(k => k.Error!));
        var onWork = kills.Count(k => k.OnWorkInFlight);
        if (onWork < RequiredOnWorkInFlight)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"only {onWork} of {kills.Count} kills landed on work in flight (at least {RequiredOnWorkInFlight} required)"));
        }

        foreach (var victim in victims)
        {
            var n = kills.Count(k => k.Victim == victim && k.OnWorkInFlight);
            if (n < 2)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"{victim} was killed on work in flight {n} times (at least 2 required)"));
            }
        }

        return problems.Count == 0 ? null : string.Join("\n", problems);
    }

    private KillRecord Record(KillRecord kill)
    {
        lock (_lock)
        {
            _kills.Add(kill);
        }

        return kill;
    }
}
