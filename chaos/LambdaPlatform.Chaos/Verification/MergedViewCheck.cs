using System.Globalization;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>What the merged views hold compared with the exact answer.</summary>
/// <param name="EventsInView">Events the merged <c>activity_by_type</c> view counts.</param>
/// <param name="Lost">Events missing, summed over (hour, event type) buckets and checkout minutes.</param>
/// <param name="Duplicated">Events counted too often, summed the same way.</param>
/// <param name="Mismatches">The first differing buckets, for the log.</param>
public sealed record ViewComparison(long EventsInView, long Lost, long Duplicated, IReadOnlyList<string> Mismatches);

/// <summary>Compares the serving layer's merged views (what analysts and the API read) with <see cref="ExpectedViews"/>.</summary>
public static class MergedViewCheck
{
    /// <summary>Reads <c>activity_by_type</c> and <c>checkout_revenue</c> through <paramref name="clickHouse"/> and compares every bucket.</summary>
    public static async Task<ViewComparison> CompareAsync(IClickHouse clickHouse, ExpectedViews expected, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clickHouse);
        ArgumentNullException.ThrowIfNull(expected);
        var activity = new Dictionary<(DateTime, string), long>();
        foreach (var row in await RowsAsync(clickHouse, "SELECT toUnixTimestamp(bucket), eventType, sum(events) FROM activity_by_type GROUP BY bucket, eventType", cancellationToken))
        {
            activity[(Time(row[0]), row[1])] = long.Parse(row[2], CultureInfo.InvariantCulture);
        }

        var orders = new Dictionary<DateTime, long>();
        foreach (var row in await RowsAsync(clickHouse, "SELECT toUnixTimestamp(bucket), sum(orders) FROM checkout_revenue GROUP BY bucket", cancellationToken))
        {
            orders[Time(row[0])] = long.Parse(row[1], CultureInfo.InvariantCulture);
        }

        var mismatches = new List<string>();
        var (lost, duplicated) = Diff(expected.Activity, activity, k => $"activity_by_type {k.Item1:yyyy-MM-dd HH:mm} {k.Item2}", mismatches);
        var (lostOrders, duplicatedOrders) = Diff(expected.Orders, orders, k => $"checkout_revenue {k:yyyy-MM-dd HH:mm} orders", mismatches);
        return new ViewComparison(activity.Values.Sum(), lost + lostOrders, duplicated + duplicatedOrders, mismatches);
    }

    private static (long Lost, long Duplicated) Diff<TKey>(IReadOnlyDictionary<TKey, long> expected, Dictionary<TKey, long> actual, Func<TKey, string> name, List<string> mismatches)
        where TKey : notnull
    {
        long lost = 0, duplicated = 0;
        foreach (var key in expected.Keys.Union(actual.Keys))
        {
            var want = expected.GetValueOrDefault(key);
            var got = actual.GetValueOrDefault(key);
            if (want == got)
            {
                continue;
            }

            lost += Math.Max(0, want - got);
            duplicated += Math.Max(0, got - want);
            if (mismatches.Count < 20)
            {
                mismatches.Add($"{name(key)}: expected {want}, view has {got}");
            }
        }

        return (lost, duplicated);
    }

    private static DateTime Time(string unixSeconds) => DateTime.UnixEpoch.AddSeconds(long.Parse(unixSeconds, CultureInfo.InvariantCulture));

    internal static async Task<List<string[]>> RowsAsync(IClickHouse clickHouse, string sql, CancellationToken cancellationToken)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated", cancellationToken);
        using var reader = new StreamReader(stream);
        var rows = new List<string[]>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                rows.Add(line.Split('\t'));
            }
        }

        return rows;
    }
}
