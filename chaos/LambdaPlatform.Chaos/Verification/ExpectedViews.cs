using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>
/// The exact answer, kept independently of the platform: every valid event Kafka acknowledged, counted
/// per hour and event type (the <c>activity_by_type</c> view's grain without its source dimension) and
/// per minute for checkouts (<c>checkout_revenue</c>'s orders). Thread-safe: delivery reports add to it.
/// </summary>
public sealed class ExpectedViews
{
    private readonly Lock _lock = new();
    private readonly HashSet<Guid> _ids = [];
    private readonly Dictionary<(DateTime Hour, string EventType), long> _activity = [];
    private readonly Dictionary<DateTime, long> _orders = [];

    /// <summary>Distinct valid events acknowledged.</summary>
    public long Events
    {
        get
        {
            lock (_lock)
            {
                return _ids.Count;
            }
        }
    }

    /// <summary>Counts an acknowledged valid event (a second delivery of the same eventId counts once, as the views do).</summary>
    public void Add(GeneratedEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var hour = new DateTime(e.Timestamp.Ticks - (e.Timestamp.Ticks % TimeSpan.TicksPerHour), DateTimeKind.Utc);
        lock (_lock)
        {
            if (!_ids.Add(e.EventId))
            {
                return;
            }

            _activity[(hour, e.EventType)] = _activity.GetValueOrDefault((hour, e.EventType)) + 1;
            if (e.EventType == "user.action.checkout")
            {
                var minute = new DateTime(e.Timestamp.Ticks - (e.Timestamp.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc);
                _orders[minute] = _orders.GetValueOrDefault(minute) + 1;
            }
        }
    }

    /// <summary>Events per (hour, event type).</summary>
    public IReadOnlyDictionary<(DateTime Hour, string EventType), long> Activity
    {
        get
        {
            lock (_lock)
            {
                return new Dictionary<(DateTime, string), long>(_activity);
            }
        }
    }

    /// <summary>Checkouts per minute.</summary>
    public IReadOnlyDictionary<DateTime, long> Orders
    {
        get
        {
            lock (_lock)
            {
                return new Dictionary<DateTime, long>(_orders);
            }
        }
    }
}
