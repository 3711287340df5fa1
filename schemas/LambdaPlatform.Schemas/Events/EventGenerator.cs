using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace LambdaPlatform.Schemas.Events;

/// <summary>Shape of the generated traffic.</summary>
public sealed record EventGeneratorOptions
{
    /// <summary>Seed for the random source; the same seed gives the same events. Default 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Number of distinct users. Default 10,000.</summary>
    public int Users { get; init; } = 10_000;

    /// <summary>Store locations used by checkouts and carts.</summary>
    public IReadOnlyList<string> Stores { get; init; } = ["berlin", "paris", "london", "madrid", "rome", "vienna", "amsterdam", "warsaw"];

    /// <summary>Values of <c>metadata.source</c>.</summary>
    public IReadOnlyList<string> Sources { get; init; } = ["web", "ios", "android"];

    /// <summary>Values of <c>metadata.version</c>: versions of the producing apps (free text, not schema versions).</summary>
    public IReadOnlyList<string> AppVersions { get; init; } = ["2.4.3", "2.5.0", "2.5.1", "3.0.0"];
}

/// <summary>One generated event: its JSON and the fields a test needs to compute ground truth.</summary>
/// <param name="Json">The event as UTF-8 JSON.</param>
/// <param name="EventId">Its id.</param>
/// <param name="EventType">Its type.</param>
/// <param name="UserId">Its user (the Kafka key).</param>
/// <param name="Timestamp">Its event time (UTC, millisecond precision).</param>
public sealed record GeneratedEvent(byte[] Json, Guid EventId, string EventType, string UserId, DateTime Timestamp);

/// <summary>
/// Generates realistic, schema-valid events in the shape producers send today: page views, searches, carts and
/// checkouts from a fixed population of users and stores. A checkout carries 1–5 line items with log-normal
/// prices and a <c>cartValue</c> equal to the sum of quantity × price; <c>metadata.version</c> is an app version
/// (<see cref="EventGeneratorOptions.AppVersions"/>) and no event names a schema version. Optional fields vary as
/// they do in real traffic: present, absent or null (checkout <c>currency</c> and <c>coupon</c>, page view
/// <c>referrer</c>, search <c>filters</c>). Deterministic for a seed. Used by <c>lambda up --demo</c>, the tests
/// and the benchmarks. Not thread-safe.
/// </summary>
public sealed class EventGenerator
{
    private static readonly string[] Pages = ["/", "/products", "/products/shoes", "/products/bags", "/cart", "/checkout", "/account", "/search"];
    private static readonly string[] Queries = ["shoes", "red dress", "backpack", "running shoes", "gift card", "sale", "jacket", "watch"];
    private static readonly string[] Currencies = ["EUR", "USD", "GBP"];
    private static readonly string[] Referrers = ["https://search.example/q", "/", "https://social.example/post", "/products"];
    private static readonly string[] Filters = ["size:42", "color:red", "brand:acme", "price:<100", "in-stock"];
    private const int MaxLineItems = 5;

    private readonly EventGeneratorOptions _options;
    private readonly Random _random;
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly byte[] _guidBytes = new byte[16];
    private readonly (int Sku, int Quantity, decimal Price)[] _lines = new (int, int, decimal)[MaxLineItems];

    /// <summary>Creates a generator.</summary>
    public EventGenerator(EventGeneratorOptions? options = null)
    {
        _options = options ?? new EventGeneratorOptions();
        _random = new Random(_options.Seed);
    }

    /// <summary>The next event, of a random type, at <paramref name="timestamp"/>.</summary>
    public GeneratedEvent Next(DateTime timestamp)
    {
        var roll = _random.Next(100);
        var type = roll switch
        {
            < 45 => "user.action.page_view",
            < 65 => "user.action.search",
            < 85 => "user.action.add_to_cart",
            _ => "user.action.checkout",
        };
        return Next(type, timestamp);
    }

    /// <summary>The next event of <paramref name="eventType"/> at <paramref name="timestamp"/>.</summary>
    public GeneratedEvent Next(string eventType, DateTime timestamp)
    {
        _random.NextBytes(_guidBytes);
        _guidBytes[7] = (byte)((_guidBytes[7] & 0x0F) | 0x40); // version 4
        _guidBytes[8] = (byte)((_guidBytes[8] & 0x3F) | 0x80); // RFC 4122 variant
        var eventId = new Guid(_guidBytes);
        var userId = "u" + _random.Next(_options.Users).ToString("D6", CultureInfo.InvariantCulture);
        var ts = new DateTime(timestamp.Ticks - (timestamp.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);

        _buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(_buffer))
        {
            w.WriteStartObject();
            w.WriteString("eventId", eventId);
            w.WriteString("eventType", eventType);
            w.WriteString("timestamp", ts.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            w.WriteString("userId", userId);
            w.WritePropertyName("payload");
            w.WriteStartObject();
            WritePayload(w, eventType);
            w.WriteEndObject();
            w.WritePropertyName("metadata");
            w.WriteStartObject();
            w.WriteString("source", Pick(_options.Sources));
            w.WriteString("version", Pick(_options.AppVersions));
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return new GeneratedEvent(_buffer.WrittenSpan.ToArray(), eventId, eventType, userId, ts);
    }

    private void WritePayload(Utf8JsonWriter w, string eventType)
    {
        switch (eventType)
        {
            case "user.action.checkout":
                WriteCheckout(w);
                break;
            case "user.action.add_to_cart":
                w.WriteString("location", Pick(_options.Stores));
                w.WriteString("sku", Sku(_random.Next(5000)));
                w.WriteNumber("quantity", 1 + _random.Next(3));
                w.WriteNumber("price", CartValue());
                break;
            case "user.action.search":
                w.WriteString("query", Pick(Queries));
                w.WriteNumber("results", _random.Next(200));
                var filters = _random.Next(10);
                if (filters >= 6)
                {
                    // Mostly absent; sometimes an empty list, sometimes a few filters.
                    w.WriteStartArray("filters");
                    for (var i = filters == 6 ? 0 : 1 + _random.Next(3); i > 0; i--)
                    {
                        w.WriteStringValue(Pick(Filters));
                    }

                    w.WriteEndArray();
                }

                break;
            default:
                w.WriteString("page", Pick(Pages));
                var referrer = _random.Next(10);
                if (referrer == 0)
                {
                    w.WriteNull("referrer");
                }
                else if (referrer >= 3)
                {
                    w.WriteString("referrer", Pick(Referrers));
                }

                w.WriteNumber("durationMs", _random.Next(120_000));
                break;
        }
    }

    /// <summary>The canonical checkout: cartValue, line items and store, then the optional currency and coupon.</summary>
    private void WriteCheckout(Utf8JsonWriter w)
    {
        var count = 1 + _random.Next(MaxLineItems);
        var cartValue = 0m;
        for (var i = 0; i < count; i++)
        {
            var quantity = _random.Next(4) == 0 ? 2 + _random.Next(3) : 1;
            var price = ItemPrice();
            _lines[i] = (_random.Next(5000), quantity, price);
            cartValue += quantity * price;
        }

        w.WriteNumber("cartValue", cartValue);
        w.WriteStartArray("items");
        for (var i = 0; i < count; i++)
        {
            w.WriteStartObject();
            w.WriteString("sku", Sku(_lines[i].Sku));
            w.WriteNumber("quantity", _lines[i].Quantity);
            w.WriteNumber("price", _lines[i].Price);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteString("location", Pick(_options.Stores));
        if (_random.Next(10) >= 3)
        {
            // Absent in 3 of 10 checkouts: the store's own currency.
            w.WriteString("currency", Pick(Currencies));
        }

        var coupon = _random.Next(10);
        if (coupon == 0)
        {
            w.WriteNull("coupon");
        }
        else if (coupon <= 2)
        {
            w.WriteString("coupon", "SAVE" + _random.Next(10, 50).ToString(CultureInfo.InvariantCulture));
        }
    }

    private static string Sku(int number) => "SKU-" + number.ToString("D4", CultureInfo.InvariantCulture);

    private decimal ItemPrice()
    {
        // Log-normal around ~25 per unit, in cents, at most 9,999.99 (so a cart stays far below the schema's 1,000,000).
        var normal = Math.Sqrt(-2.0 * Math.Log(1.0 - _random.NextDouble())) * Math.Cos(2.0 * Math.PI * _random.NextDouble());
        var value = Math.Exp(3.2 + (0.8 * normal));
        return Math.Round((decimal)Math.Min(value, 9_999.99), 2);
    }

    private decimal CartValue()
    {
        // Log-normal around ~60 with a long tail, in cents.
        var normal = Math.Sqrt(-2.0 * Math.Log(1.0 - _random.NextDouble())) * Math.Cos(2.0 * Math.PI * _random.NextDouble());
        var value = Math.Exp(4.0 + (0.8 * normal));
        return Math.Round((decimal)Math.Min(value, 99_999.0), 2);
    }

    private string Pick(IReadOnlyList<string> values) => values[_random.Next(values.Count)];
}
