using System.Buffers;
using System.Globalization;
using System.Text.Json;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// The event generator as shipped before the canonical event shape (commit 50620ab), kept verbatim so that tests can
/// prove its events still decode: <c>metadata.version</c> "1", checkout <c>items</c> an integer and <c>currency</c>
/// always present (the <c>user.action.checkout</c> v1 shape). Not thread-safe.
/// </summary>
internal sealed class LegacyEventGenerator
{
    private static readonly string[] Pages = ["/", "/products", "/products/shoes", "/products/bags", "/cart", "/checkout", "/account", "/search"];
    private static readonly string[] Queries = ["shoes", "red dress", "backpack", "running shoes", "gift card", "sale", "jacket", "watch"];
    private static readonly string[] Currencies = ["EUR", "USD", "GBP"];

    private readonly EventGeneratorOptions _options;
    private readonly Random _random;
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly byte[] _guidBytes = new byte[16];

    /// <summary>Creates a generator.</summary>
    public LegacyEventGenerator(EventGeneratorOptions? options = null)
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
            w.WriteString("version", "1");
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
                w.WriteString("location", Pick(_options.Stores));
                w.WriteNumber("cartValue", CartValue());
                w.WriteString("currency", Pick(Currencies));
                w.WriteNumber("items", 1 + _random.Next(8));
                if (_random.Next(5) == 0)
                {
                    w.WriteString("coupon", "SAVE" + _random.Next(10, 50).ToString(CultureInfo.InvariantCulture));
                }

                break;
            case "user.action.add_to_cart":
                w.WriteString("location", Pick(_options.Stores));
                w.WriteString("sku", "sku-" + _random.Next(5000).ToString("D4", CultureInfo.InvariantCulture));
                w.WriteNumber("quantity", 1 + _random.Next(3));
                w.WriteNumber("price", CartValue());
                break;
            case "user.action.search":
                w.WriteString("query", Pick(Queries));
                w.WriteNumber("results", _random.Next(200));
                break;
            default:
                w.WriteString("page", Pick(Pages));
                w.WriteString("referrer", _random.Next(3) == 0 ? "https://search.example/q" : "/");
                w.WriteNumber("durationMs", _random.Next(120_000));
                break;
        }
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
