namespace LambdaPlatform.Chaos;

/// <summary>How hard a chaos run pushes: <see cref="Full"/> for <c>make chaos</c>, <see cref="Ci"/> for CI.</summary>
public sealed record ChaosSettings
{
    /// <summary>Events produced by the kill scenario.</summary>
    public int Events { get; init; } = 1_000_000;

    /// <summary>Kills (SIGKILL) of speed layer, archiver and batch job in the kill scenario; at least this many.</summary>
    public int Kills { get; init; } = 12;

    /// <summary>Events produced by the other fault scenarios.</summary>
    public int FaultEvents { get; init; } = 200_000;

    /// <summary>Hostile messages in the fuzz scenario.</summary>
    public int HostileMessages { get; init; } = 100_000;

    /// <summary>How long the broker stays down.</summary>
    public TimeSpan BrokerOutage { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long ClickHouse stays unavailable.</summary>
    public TimeSpan ClickHouseOutage { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long PostgreSQL (Hangfire's storage) stays stopped under <c>lambda serve</c>'s scheduler.</summary>
    public TimeSpan PostgresOutage { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The batch schedule of every view while PostgreSQL is stopped (Hangfire cron, seconds first): every 15 s, so that two ticks fall
    /// inside the outage and a run is in flight when it starts (production schedules are hourly or daily; every minute in the
    /// deployment test).
    /// </summary>
    public string ServeSchedule { get; init; } = "*/15 * * * * *";

    /// <summary>How long the speed layer stays down while the API is under load.</summary>
    public TimeSpan SpeedOutage { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Requests per second the API serves while the speed layer is down (open loop: sent on schedule, whatever the answers take).</summary>
    public int ApiRequestsPerSecond { get; init; } = 50;

    /// <summary>Seed of every random choice (printed, so a run can be repeated).</summary>
    public int Seed { get; init; } = Environment.TickCount & 0x7FFFFFFF;

    /// <summary>Scratch folder of the run (data folders, child-process logs).</summary>
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "lambda-chaos-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>The whole suite, as <c>make chaos</c> runs it.</summary>
    public static ChaosSettings Full(int? seed = null) => seed is { } s ? new ChaosSettings { Seed = s } : new ChaosSettings();

    /// <summary>The same suite, smaller, as CI runs it on every change.</summary>
    public static ChaosSettings Ci(int? seed = null)
    {
        var settings = new ChaosSettings { Events = 100_000, Kills = 10, FaultEvents = 50_000, HostileMessages = 100_000, SpeedOutage = TimeSpan.FromSeconds(15) };
        return seed is { } s ? settings with { Seed = s } : settings;
    }

    /// <summary>A sub-folder of <see cref="WorkDirectory"/>, created.</summary>
    public string Folder(string name)
    {
        var path = Path.Combine(WorkDirectory, name);
        Directory.CreateDirectory(path);
        return path;
    }
}
