using System.Globalization;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Sketches;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>What the exact answer needs of one event, read from its JSON here (not by the platform's decoder).</summary>
/// <param name="EventId">Its id (duplicates count once, as in the views).</param>
/// <param name="EventType">Its type.</param>
/// <param name="UserId">Its user (distinct users and buyers).</param>
/// <param name="Timestamp">Its event time, UTC.</param>
/// <param name="Source"><c>metadata.source</c> as a dimension value ("" when missing or null).</param>
/// <param name="Store"><c>payload.location</c> as a dimension value ("" when missing or null).</param>
/// <param name="CartValue"><c>payload.cartValue</c> when it is a JSON number, else null (skipped by sum and quantile).</param>
/// <param name="CartValueExact">The same number read as a decimal from its JSON text (the exact sum).</param>
public sealed record EventFacts(Guid EventId, string EventType, string UserId, DateTime Timestamp, string Source, string Store, double? CartValue, decimal? CartValueExact)
{
    /// <summary>Reads the facts of a canonical event's JSON.</summary>
    /// <exception cref="NotSupportedException">A dimension holds a number or boolean (the chaos traffic never sends one).</exception>
    public static EventFacts Of(ReadOnlySpan<byte> json)
    {
        using var document = JsonDocument.Parse(json.ToArray());
        var root = document.RootElement;
        var payload = root.TryGetProperty("payload", out var p) && p.ValueKind == JsonValueKind.Object ? p : default;
        var metadata = root.TryGetProperty("metadata", out var m) && m.ValueKind == JsonValueKind.Object ? m : default;
        double? cart = null;
        decimal? exact = null;
        if (payload.ValueKind == JsonValueKind.Object && payload.TryGetProperty("cartValue", out var c) && c.ValueKind == JsonValueKind.Number)
        {
            cart = double.Parse(c.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture);
            exact = c.TryGetDecimal(out var d) ? d : (decimal)cart.Value;
        }

        return new EventFacts(
            root.GetProperty("eventId").GetGuid(),
            root.GetProperty("eventType").GetString()!,
            root.GetProperty("userId").GetString()!,
            root.GetProperty("timestamp").GetDateTimeOffset().UtcDateTime,
            Dimension(metadata, "source"),
            Dimension(payload, "location"),
            cart,
            exact);
    }

    /// <summary>The facts of a generated event.</summary>
    public static EventFacts Of(GeneratedEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Of(e.Json);
    }

    private static string Dimension(JsonElement parent, string name)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out var value) || value.ValueKind is JsonValueKind.Null)
        {
            return string.Empty; // the platform's one value for a missing dimension
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new NotSupportedException($"dimension {name} holds a {value.ValueKind}; the chaos traffic sends strings only");
    }
}

/// <summary>A bucket and dimensions of <c>activity_by_type</c>: hour, event type, source.</summary>
public readonly record struct ActivityKey(DateTime Hour, string EventType, string Source);

/// <summary>A bucket and dimension of <c>checkout_revenue</c>: minute, store.</summary>
public readonly record struct CheckoutKey(DateTime Minute, string Store);

/// <summary>The exact measures of one <c>activity_by_type</c> row.</summary>
/// <param name="Events">count.</param>
/// <param name="Users">distinct(userId).</param>
/// <param name="UsersSketch">What a HyperLogLog of exactly these users answers (the real-time side's own error, see <see cref="MeasureBounds.WithinHyperLogLog"/>).</param>
public readonly record struct ActivityCells(long Events, long Users, long UsersSketch);

/// <summary>The exact measures of one <c>checkout_revenue</c> row.</summary>
/// <param name="Orders">count.</param>
/// <param name="Revenue">sum(payload.cartValue), exact (null when no value was a number).</param>
/// <param name="Buyers">distinct(userId).</param>
/// <param name="P99Cart">quantile(payload.cartValue, 0.99): the ⌈0.99·n⌉-th smallest number (null when none).</param>
/// <param name="BuyersSketch">What a HyperLogLog of exactly these buyers answers.</param>
public readonly record struct CheckoutCells(long Orders, decimal? Revenue, long Buyers, double? P99Cart, long BuyersSketch);

/// <summary>
/// The exact answer, kept independently of the platform: every valid event Kafka acknowledged, aggregated into both
/// shipped views with their own rules written out here — <c>activity_by_type</c> (per hour, event type and source: events,
/// distinct users) and <c>checkout_revenue</c> (checkouts per minute and store: orders, revenue, distinct buyers, p99 of
/// the cart value by the nearest rank ⌈q·n⌉). Values that are missing or not JSON numbers are skipped by sum and
/// quantile; a missing dimension groups under "". Thread-safe: delivery reports add to it.
/// </summary>
public sealed class ExpectedViews
{
    /// <summary>The checkout event type (<c>checkout_revenue</c> reads only these).</summary>
    public const string Checkout = "user.action.checkout";

    /// <summary>The quantile of <c>p99_cart</c>.</summary>
    public const decimal P99 = 0.99m;

    private readonly Lock _lock = new();
    private readonly HashSet<Guid>? _ids;
    private readonly Dictionary<ActivityKey, (long Events, HashSet<string> Users)> _activity = [];
    private readonly Dictionary<CheckoutKey, (long Orders, decimal Revenue, int Values, HashSet<string> Buyers, List<double> Carts)> _checkout = [];
    private long _events;
    private long _version;
    private (long Version, IReadOnlyDictionary<ActivityKey, ActivityCells> Cells)? _activityCache;
    private (long Version, IReadOnlyDictionary<CheckoutKey, CheckoutCells> Cells)? _checkoutCache;

    /// <summary>Creates an empty answer.</summary>
    /// <param name="trackEventIds">
    /// Count an event id once however often it is acknowledged (the views dedupe by id). False for runs of tens of
    /// millions of generated events, whose ids are unique by construction (a 36M-id set needs over a gigabyte).
    /// </param>
    public ExpectedViews(bool trackEventIds = true) => _ids = trackEventIds ? [] : null;

    /// <summary>Distinct valid events acknowledged.</summary>
    public long Events
    {
        get
        {
            lock (_lock)
            {
                return _events;
            }
        }
    }

    /// <summary>Counts an acknowledged valid event.</summary>
    public void Add(GeneratedEvent e) => Add(EventFacts.Of(e));

    /// <summary>Counts an acknowledged valid event (a second delivery of the same eventId counts once, as the views do).</summary>
    public void Add(EventFacts e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var hour = Truncate(e.Timestamp, TimeSpan.TicksPerHour);
        lock (_lock)
        {
            if (_ids is not null && !_ids.Add(e.EventId))
            {
                return;
            }

            _events++;
            _version++;
            var key = new ActivityKey(hour, e.EventType, e.Source);
            if (!_activity.TryGetValue(key, out var a))
            {
                a = (0, new HashSet<string>(StringComparer.Ordinal));
            }

            a.Users.Add(e.UserId);
            _activity[key] = (a.Events + 1, a.Users);
            if (e.EventType != Checkout)
            {
                return;
            }

            var ck = new CheckoutKey(Truncate(e.Timestamp, TimeSpan.TicksPerMinute), e.Store);
            if (!_checkout.TryGetValue(ck, out var c))
            {
                c = (0, 0m, 0, new HashSet<string>(StringComparer.Ordinal), []);
            }

            c.Buyers.Add(e.UserId);
            if (e.CartValue is { } value)
            {
                c.Carts.Add(value);
                c = c with { Revenue = c.Revenue + e.CartValueExact!.Value, Values = c.Values + 1 };
            }

            _checkout[ck] = c with { Orders = c.Orders + 1 };
        }
    }

    /// <summary>Every <c>activity_by_type</c> row of the exact answer.</summary>
    public IReadOnlyDictionary<ActivityKey, ActivityCells> Activity()
    {
        lock (_lock)
        {
            if (_activityCache is { } cached && cached.Version == _version)
            {
                return cached.Cells;
            }

            var cells = _activity.ToDictionary(kv => kv.Key, kv => new ActivityCells(kv.Value.Events, kv.Value.Users.Count, Sketch(kv.Value.Users)));
            _activityCache = (_version, cells);
            return cells;
        }
    }

    /// <summary>Every <c>checkout_revenue</c> row of the exact answer.</summary>
    public IReadOnlyDictionary<CheckoutKey, CheckoutCells> CheckoutRevenue()
    {
        lock (_lock)
        {
            if (_checkoutCache is { } cached && cached.Version == _version)
            {
                return cached.Cells;
            }

            var cells = _checkout.ToDictionary(kv => kv.Key, kv => new CheckoutCells(
                kv.Value.Orders,
                kv.Value.Values == 0 ? null : kv.Value.Revenue,
                kv.Value.Buyers.Count,
                NearestRank(kv.Value.Carts, P99),
                Sketch(kv.Value.Buyers)));
            _checkoutCache = (_version, cells);
            return cells;
        }
    }

    /// <summary>The ⌈q·n⌉-th smallest of <paramref name="values"/> (at least the first), or null when there are none.</summary>
    public static double? NearestRank(IReadOnlyCollection<double> values, decimal q)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return null;
        }

        var sorted = values.Order().ToArray();
        var rank = Math.Max(1, (int)Math.Ceiling(q * sorted.Length)); // decimal: 0.99 × 100 is exactly 99
        return sorted[rank - 1];
    }

    /// <summary>
    /// The estimate of a HyperLogLog (the real-time side's sketch type) fed exactly <paramref name="values"/>, hashed as the
    /// platform hashes text (XXH64 of the UTF-8 bytes): what a correct real-time side answers for this set.
    /// </summary>
    public static long Sketch(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sketch = new HyperLogLog();
        foreach (var value in values)
        {
            sketch.AddHash(XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(value)));
        }

        return (long)sketch.Estimate();
    }

    private static DateTime Truncate(DateTime t, long unit) => new(t.Ticks - (t.Ticks % unit), DateTimeKind.Utc);
}
