using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>What the merged views hold compared with the exact answer.</summary>
/// <param name="EventsInView">Events the merged <c>activity_by_type</c> view counts.</param>
/// <param name="Lost">Events missing, summed over the count cells of both views (events per hour, type and source; orders per minute and store).</param>
/// <param name="Duplicated">Events counted too often, summed the same way.</param>
/// <param name="CellsCompared">Measure values compared (one per row of either side and measure), plus one <c>side</c> cell per row.</param>
/// <param name="CellsWrong">Of those, the ones outside their bound (or missing, or extra, or answered by the wrong side).</param>
/// <param name="Mismatches">The first wrong cells, for the log.</param>
public sealed record ViewComparison(long EventsInView, long Lost, long Duplicated, long CellsCompared, long CellsWrong, IReadOnlyList<string> Mismatches)
{
    /// <summary>Nothing lost, nothing doubled, every cell within its bound.</summary>
    public bool Exact => Lost == 0 && Duplicated == 0 && CellsWrong == 0;
}

/// <summary>
/// The bounds a merged cell is held to, stated here independently of the platform's constants. Below the watermark W
/// (the batch side answers) every measure is exact, except that a sum of doubles may differ in its last bits
/// (<see cref="Sum"/>). At or above W (the real-time side): counts exact, sums within <see cref="Sum"/>, distinct counts
/// within <see cref="HyperLogLog"/> of the exact count (or, beyond it, equal to the sketch of exactly the right values,
/// see <see cref="WithinHyperLogLog"/>), quantiles within <see cref="DDSketch"/> of the exact value at the rank.
/// </summary>
public static class MeasureBounds
{
    /// <summary>Relative error of a sum of doubles (summation order): 1e-9.</summary>
    public const double Sum = 1e-9;

    /// <summary>Three standard errors of a HyperLogLog with 4,096 registers: 3 × 1.04 / √4096 = 0.04875 (relative).</summary>
    public const double HyperLogLog = 3 * 1.04 / 64;

    /// <summary>The DDSketch's relative accuracy: 1% of the exact value at the rank.</summary>
    public const double DDSketch = 0.01;

    /// <summary>An exact double read back through text: 1e-12 relative.</summary>
    public const double Exact = 1e-12;

    /// <summary>
    /// Whether a real-time distinct count <paramref name="actual"/> is within the HyperLogLog's bound of the exact count
    /// <paramref name="expected"/>: within <see cref="HyperLogLog"/> (relative), or else exactly what a HyperLogLog fed the
    /// exact set answers (<paramref name="sketch"/>), so that the difference is the sketch's own error and not the pipeline's.
    /// </summary>
    /// <remarks>
    /// The relative bound is the sketch's asymptotic 3σ. For small counts the sketch counts occupied registers (linear
    /// counting): two of n values hashing to one register make it one short, which is more than 4.875% of n for n &lt; 21
    /// and happens to about n²/8192 of such cells (3% at n = 16); over thousands of cells a few are two or three short.
    /// Such a cell passes only if the real-time answer equals the sketch of exactly the right values: a lost, extra or
    /// unmerged value shows up as a different answer.
    /// </remarks>
    public static bool WithinHyperLogLog(long expected, long sketch, double? actual) =>
        actual is { } a && (Within(expected, a, HyperLogLog) || a == sketch);

    /// <summary>Whether <paramref name="actual"/> is within <paramref name="relative"/> of <paramref name="expected"/> (or both are null).</summary>
    public static bool Within(double? expected, double? actual, double relative)
    {
        if (expected is null || actual is null)
        {
            return expected is null && actual is null;
        }

        return Math.Abs(actual.Value - expected.Value) <= (relative * Math.Abs(expected.Value)) + 1e-12;
    }
}

/// <summary>
/// Compares every cell of the serving layer's merged views (what analysts and the API read) with
/// <see cref="ExpectedViews"/>: <c>activity_by_type</c> (events, users per hour, event type and source) and
/// <c>checkout_revenue</c> (orders, revenue, buyers, p99_cart per minute and store), each against the bound of the side
/// that must answer it (<see cref="MeasureBounds"/>, by the view's W read from <c>lambda_watermarks</c>), and checks
/// that the <c>side</c> column names that side. SQL accepted by clickhouse-server 18.16 and chDB.
/// </summary>
public static class MergedViewCheck
{
    /// <summary>Reads both merged views through <paramref name="clickHouse"/> and compares every cell.</summary>
    public static async Task<ViewComparison> CompareAsync(IClickHouse clickHouse, ExpectedViews expected, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clickHouse);
        ArgumentNullException.ThrowIfNull(expected);
        var watermarks = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        foreach (var row in await RowsAsync(clickHouse, "SELECT view, toUnixTimestamp(max(watermark)) FROM lambda_watermarks GROUP BY view", cancellationToken))
        {
            watermarks[row[0]] = Time(row[1]);
        }

        var activity = new Dictionary<ActivityKey, List<string[]>>();
        foreach (var row in await RowsAsync(clickHouse, "SELECT toUnixTimestamp(bucket), eventType, source, events, users, side FROM activity_by_type", cancellationToken))
        {
            Add(activity, new ActivityKey(Time(row[0]), row[1], row[2]), row[3..]);
        }

        var checkout = new Dictionary<CheckoutKey, List<string[]>>();
        foreach (var row in await RowsAsync(clickHouse, "SELECT toUnixTimestamp(bucket), store, orders, revenue, buyers, p99_cart, side FROM checkout_revenue", cancellationToken))
        {
            Add(checkout, new CheckoutKey(Time(row[0]), row[1]), row[2..]);
        }

        return Compare(expected, watermarks.GetValueOrDefault("activity_by_type", DateTime.UnixEpoch), activity,
            watermarks.GetValueOrDefault("checkout_revenue", DateTime.UnixEpoch), checkout);
    }

    /// <summary>
    /// The comparison itself, over rows as the views return them (TabSeparated fields after the key:
    /// <c>events, users, side</c> and <c>orders, revenue, buyers, p99_cart, side</c>).
    /// </summary>
    internal static ViewComparison Compare(ExpectedViews expected, DateTime activityW, IReadOnlyDictionary<ActivityKey, List<string[]>> activity,
        DateTime checkoutW, IReadOnlyDictionary<CheckoutKey, List<string[]>> checkout)
    {
        var diff = new Diff();
        var wantActivity = expected.Activity();
        foreach (var key in wantActivity.Keys.Union(activity.Keys))
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"activity_by_type {key.Hour:yyyy-MM-dd HH:mm} {key.EventType}/{Show(key.Source)}");
            var batch = key.Hour < activityW;
            var has = wantActivity.TryGetValue(key, out var want);
            var rows = activity.GetValueOrDefault(key) ?? [];
            var events = rows.Sum(r => long.Parse(r[0], CultureInfo.InvariantCulture));
            diff.Count(name + " events", has ? want.Events : 0, events);
            diff.Cell(name + " users", rows.Count == 1 && has && (batch ? MeasureBounds.Within(want.Users, Number(rows[0][1]), 0) : MeasureBounds.WithinHyperLogLog(want.Users, want.UsersSketch, Number(rows[0][1]))),
                has ? want.Users.ToString(CultureInfo.InvariantCulture) : "no row", Fields(rows, 1));
            diff.Cell(name + " side", rows.Count != 1 || rows[0][2] == (batch ? "batch" : "realtime"), batch ? "batch" : "realtime", Fields(rows, 2));
        }

        var wantCheckout = expected.CheckoutRevenue();
        foreach (var key in wantCheckout.Keys.Union(checkout.Keys))
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"checkout_revenue {key.Minute:yyyy-MM-dd HH:mm} {Show(key.Store)}");
            var batch = key.Minute < checkoutW;
            var has = wantCheckout.TryGetValue(key, out var want);
            var rows = checkout.GetValueOrDefault(key) ?? [];
            var one = rows.Count == 1 && has;
            diff.Count(name + " orders", has ? want.Orders : 0, rows.Sum(r => long.Parse(r[0], CultureInfo.InvariantCulture)));
            diff.Cell(name + " revenue", one && MeasureBounds.Within((double?)want.Revenue, Number(rows[0][1]), MeasureBounds.Sum),
                has ? Show(want.Revenue) : "no row", Fields(rows, 1));
            diff.Cell(name + " buyers", one && (batch ? MeasureBounds.Within(want.Buyers, Number(rows[0][2]), 0) : MeasureBounds.WithinHyperLogLog(want.Buyers, want.BuyersSketch, Number(rows[0][2]))),
                has ? want.Buyers.ToString(CultureInfo.InvariantCulture) : "no row", Fields(rows, 2));
            diff.Cell(name + " p99_cart", one && MeasureBounds.Within(want.P99Cart, Number(rows[0][3]), batch ? MeasureBounds.Exact : MeasureBounds.DDSketch),
                has ? Show(want.P99Cart) : "no row", Fields(rows, 3));
            diff.Cell(name + " side", rows.Count != 1 || rows[0][4] == (batch ? "batch" : "realtime"), batch ? "batch" : "realtime", Fields(rows, 4));
        }

        var inView = activity.Values.SelectMany(r => r).Sum(r => long.Parse(r[0], CultureInfo.InvariantCulture));
        return new ViewComparison(inView, diff.Lost, diff.Duplicated, diff.Compared, diff.Wrong, diff.Mismatches);
    }

    /// <summary>Runs <paramref name="sql"/> and returns its TabSeparated rows, fields unescaped.</summary>
    internal static async Task<List<string[]>> RowsAsync(IClickHouse clickHouse, string sql, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(clickHouse);
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated", cancellationToken);
        using var reader = new StreamReader(stream);
        var rows = new List<string[]>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                rows.Add([.. line.Split('\t').Select(Unescape)]);
            }
        }

        return rows;
    }

    private static void Add<TKey>(Dictionary<TKey, List<string[]>> rows, TKey key, string[] fields)
        where TKey : notnull
    {
        if (!rows.TryGetValue(key, out var list))
        {
            rows[key] = list = [];
        }

        list.Add(fields);
    }

    private static double? Number(string field) =>
        field == ClickHouseText.Null || field.Length == 0 ? null : double.Parse(field, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static string Fields(List<string[]> rows, int index) => rows.Count == 0 ? "no row" : string.Join(" + ", rows.Select(r => r[index]));

    private static string Show(string dimension) => dimension.Length == 0 ? "(missing)" : dimension;

    private static string Show(decimal? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "NULL";

    private static string Show(double? value) => value?.ToString("R", CultureInfo.InvariantCulture) ?? "NULL";

    private static DateTime Time(string unixSeconds) => DateTime.UnixEpoch.AddSeconds(long.Parse(unixSeconds, CultureInfo.InvariantCulture));

    /// <summary>A TabSeparated field: <c>\N</c> (NULL) stays as it is, anything else is unescaped.</summary>
    private static string Unescape(string field) => field == ClickHouseText.Null ? field : ClickHouseText.Unescape(field);

    /// <summary>Accumulates cell results.</summary>
    private sealed class Diff
    {
        public long Lost { get; private set; }

        public long Duplicated { get; private set; }

        public long Compared { get; private set; }

        public long Wrong { get; private set; }

        public List<string> Mismatches { get; } = [];

        /// <summary>A count cell: its difference is lost or duplicated events.</summary>
        public void Count(string name, long want, long got)
        {
            Lost += Math.Max(0, want - got);
            Duplicated += Math.Max(0, got - want);
            Cell(name, want == got, want.ToString(CultureInfo.InvariantCulture), got.ToString(CultureInfo.InvariantCulture));
        }

        public void Cell(string name, bool ok, string want, string got)
        {
            Compared++;
            if (ok)
            {
                return;
            }

            Wrong++;
            if (Mismatches.Count < 20)
            {
                Mismatches.Add($"{name}: expected {want}, view has {got}");
            }
        }
    }
}
