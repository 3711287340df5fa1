using System.Globalization;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>One request of the load generator and what came back.</summary>
/// <param name="SentAt">When it was sent (UTC).</param>
/// <param name="Latency">From sending to the whole body read.</param>
/// <param name="Status">The HTTP status, or 0 when nothing answered (refused, reset, timed out).</param>
/// <param name="SpeedLagSeconds">The answer's <c>speedLagSeconds</c>, or null when absent or not a number.</param>
/// <param name="Error">What went wrong when <paramref name="Status"/> is not 2xx: the body's start or the client's error.</param>
/// <param name="FromCache">The API answered the rows from its cache (<c>X-Lambda-Cache: hit</c>).</param>
public readonly record struct ApiAnswer(DateTime SentAt, TimeSpan Latency, int Status, double? SpeedLagSeconds, string? Error = null, bool FromCache = false)
{
    /// <summary>A 2xx answer.</summary>
    public bool Succeeded => Status is >= 200 and < 300;
}

/// <summary>When the speed layer was down under the load: killed, and started again.</summary>
/// <param name="KilledAt">The SIGKILL (UTC).</param>
/// <param name="RestartedAt">The new process was started (UTC).</param>
public readonly record struct SpeedDownWindow(DateTime KilledAt, DateTime RestartedAt)
{
    /// <summary>How long it was down.</summary>
    public TimeSpan Down => RestartedAt - KilledAt;

    /// <summary>Whether <paramref name="at"/> falls while it was down.</summary>
    public bool Contains(DateTime at) => at >= KilledAt && at < RestartedAt;
}

/// <summary>What the API's answers said while the speed layer was down, and every violation.</summary>
/// <param name="Requests">Requests sent.</param>
/// <param name="Failed">Answers that were not 2xx (or never came).</param>
/// <param name="ServedWhileDown">2xx answers to requests sent while the speed layer was down.</param>
/// <param name="P50Ms">Median latency of every request, in milliseconds.</param>
/// <param name="P99Ms">99th percentile latency of every request, in milliseconds (nearest rank).</param>
/// <param name="P99WhileDownMs">99th percentile latency of the requests sent while the speed layer was down.</param>
/// <param name="LagBeforeSeconds">The highest <c>speedLagSeconds</c> answered before the kill (the healthy lag).</param>
/// <param name="LagGrowthSeconds">How much <c>speedLagSeconds</c> grew from the first to the last answer while down.</param>
/// <param name="ClockWhileDownSeconds">How much time passed between those two answers: the lag must grow as much.</param>
/// <param name="MaxLagWhileDownSeconds">The highest <c>speedLagSeconds</c> answered while down.</param>
/// <param name="RecoveredAfterSeconds">From the restart to the first answer whose lag is back within the healthy bound, or null when none was.</param>
/// <param name="Problems">Every violation, for the log.</param>
public sealed record ApiUnderLoadComparison(int Requests, int Failed, int ServedWhileDown, double P50Ms, double P99Ms, double P99WhileDownMs,
    double LagBeforeSeconds, double LagGrowthSeconds, double ClockWhileDownSeconds, double MaxLagWhileDownSeconds, double? RecoveredAfterSeconds,
    IReadOnlyList<string> Problems)
{
    /// <summary>Every answer succeeded, the lag flagged the stale answers, and it fell back after the restart.</summary>
    public bool Clean => Problems.Count == 0;
}

/// <summary>
/// The rules of the API's answers while the speed layer is down under load: every request answered 2xx (from ClickHouse: the
/// API needs nothing of the speed process); every answer carries <c>speedLagSeconds</c>; while the speed layer is down the lag grows
/// with the clock (the answers say how stale they are); after its restart the lag falls back within the healthy bound.
/// </summary>
public static class ApiUnderLoadCheck
{
    /// <summary>
    /// How far the lag's growth while down may fall short of the clock: the API reads the speed layer's progress every poll interval
    /// (1 s) and the answers in between repeat it, at each end of the window.
    /// </summary>
    public static readonly TimeSpan GrowthTolerance = TimeSpan.FromSeconds(3);

    /// <summary>How far above the healthy lag (the highest before the kill) the lag counts as back to normal after the restart.</summary>
    public static readonly TimeSpan RecoveredSlack = TimeSpan.FromSeconds(3);

    /// <summary>Answers sent this long after the kill may still carry the lag of before (the API's poll had not seen the kill yet): the growth is measured from there.</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    /// <summary>Checks <paramref name="answers"/> (any order) against the rules for the outage <paramref name="window"/>.</summary>
    public static ApiUnderLoadComparison Check(IReadOnlyCollection<ApiAnswer> answers, SpeedDownWindow window)
    {
        ArgumentNullException.ThrowIfNull(answers);
        var ordered = answers.OrderBy(a => a.SentAt).ToList();
        var problems = new List<string>();

        var failed = ordered.Where(a => !a.Succeeded).ToList();
        if (failed.Count > 0)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"{failed.Count} of {ordered.Count} requests failed, e.g. {string.Join("; ", failed.Take(3).Select(a => $"{Offset(a.SentAt, window)} status {a.Status}: {a.Error}"))}"));
        }

        var unflagged = ordered.Where(a => a.Succeeded && a.SpeedLagSeconds is null).ToList();
        if (unflagged.Count > 0)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"{unflagged.Count} answers carry no speedLagSeconds (first {Offset(unflagged[0].SentAt, window)})"));
        }

        var lagged = ordered.Where(a => a.Succeeded && a.SpeedLagSeconds is not null).ToList();
        var before = lagged.Where(a => a.SentAt < window.KilledAt).ToList();
        var down = lagged.Where(a => window.Contains(a.SentAt) && a.SentAt >= window.KilledAt + Settle).ToList();
        var after = lagged.Where(a => a.SentAt >= window.RestartedAt).ToList();
        var lagBefore = before.Count == 0 ? 0 : before.Max(a => a.SpeedLagSeconds!.Value);
        if (before.Count == 0)
        {
            problems.Add("no answer before the speed layer was killed: nothing says what its healthy lag is");
        }

        double growth = 0, clock = 0, maxDown = 0;
        if (down.Count < 2)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"{down.Count} answers while the speed layer was down: too few to see the lag grow"));
        }
        else
        {
            growth = down[^1].SpeedLagSeconds!.Value - down[0].SpeedLagSeconds!.Value;
            clock = (down[^1].SentAt - down[0].SentAt).TotalSeconds;
            maxDown = down.Max(a => a.SpeedLagSeconds!.Value);
            if (growth < clock - GrowthTolerance.TotalSeconds)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"speedLagSeconds grew {growth:F1} s while {clock:F1} s passed with the speed layer down: the answers did not say how stale they were"));
            }
        }

        var bound = lagBefore + RecoveredSlack.TotalSeconds;
        var recoveredAfter = after.Where(a => a.SpeedLagSeconds!.Value <= bound).Select(a => (double?)(a.SentAt - window.RestartedAt).TotalSeconds).FirstOrDefault();
        if (recoveredAfter is null)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"speedLagSeconds never fell back within {bound:F1} s after the restart ({after.Count} answers; last {(after.Count == 0 ? "none" : after[^1].SpeedLagSeconds!.Value.ToString("F1", CultureInfo.InvariantCulture) + " s")})"));
        }

        var whileDown = ordered.Where(a => window.Contains(a.SentAt)).ToList();
        return new ApiUnderLoadComparison(ordered.Count, failed.Count, whileDown.Count(a => a.Succeeded),
            Percentile(ordered, 0.50), Percentile(ordered, 0.99), Percentile(whileDown, 0.99),
            lagBefore, growth, clock, maxDown, recoveredAfter, problems);
    }

    /// <summary>The <paramref name="quantile"/> of the latencies in milliseconds (nearest rank), or 0 when there are none.</summary>
    public static double Percentile(IReadOnlyCollection<ApiAnswer> answers, double quantile)
    {
        ArgumentNullException.ThrowIfNull(answers);
        if (answers.Count == 0)
        {
            return 0;
        }

        var sorted = answers.Select(a => a.Latency.TotalMilliseconds).Order().ToList();
        var rank = (int)Math.Ceiling(quantile * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    private static string Offset(DateTime at, SpeedDownWindow window) =>
        string.Create(CultureInfo.InvariantCulture, $"{(at - window.KilledAt).TotalSeconds:+0.0;-0.0} s from the kill");
}
