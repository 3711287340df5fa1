using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>One hostile Kafka record and what kind of mistake it is.</summary>
/// <param name="Kind">Short name of the mistake (for the log and failure messages).</param>
/// <param name="Key">Record key.</param>
/// <param name="Value">Record value (null for a tombstone).</param>
/// <param name="Headers">Record headers, or null.</param>
internal sealed record HostileMessage(string Kind, byte[]? Key, byte[]? Value, Headers? Headers);

/// <summary>
/// Makes hostile records from a seeded random source: random bytes, truncated JSON, deep nesting, wrong types,
/// timestamps far in the past and future, unknown event types, invalid UTF-8, null and empty values, and (on
/// request) huge values, keys and headers. Every record made here breaks a rule of the envelope or payload schemas
/// or a decoder limit, so the speed layer must dead-letter each one.
/// </summary>
internal sealed class FuzzMessages(Random random, EventGenerator generator)
{
    /// <summary>The decoder's default size limit (EventDecoderOptions.MaxEventBytes).</summary>
    public const int TenMegabytes = 10 * 1024 * 1024;

    private static readonly string[] Kinds =
    [
        "random bytes", "truncated json", "deep nesting", "wrong type", "past timestamp", "future timestamp",
        "unknown event type", "invalid utf-8", "null value", "empty value", "not an object", "missing field",
        "extra field", "bad timestamp text", "bad uuid", "out of range", "json with comment", "trailing junk",
    ];

    private static readonly string[] Required = ["eventId", "eventType", "timestamp", "userId", "payload", "metadata"];

    /// <summary>A small hostile record of a random kind.</summary>
    public HostileMessage Next()
    {
        var kind = Kinds[random.Next(Kinds.Length)];
        var key = random.Next(4) == 0 ? null : Encoding.UTF8.GetBytes("u" + random.Next(100_000).ToString("D6", CultureInfo.InvariantCulture));
        return new HostileMessage(kind, key, Make(kind), null);
    }

    /// <summary>A hostile body with a key of <paramref name="keyBytes"/> random bytes.</summary>
    public HostileMessage HugeKey(int keyBytes)
    {
        var key = new byte[keyBytes];
        random.NextBytes(key);
        return new HostileMessage("huge key", key, Make("wrong type"), null);
    }

    /// <summary>A hostile body with headers of about <paramref name="totalBytes"/> random bytes (one big and many small).</summary>
    public HostileMessage HugeHeaders(int totalBytes)
    {
        var headers = new Headers();
        var big = new byte[totalBytes / 2];
        random.NextBytes(big);
        headers.Add("big", big);
        for (var i = 0; i < 1000; i++)
        {
            var small = new byte[totalBytes / 2 / 1000];
            random.NextBytes(small);
            headers.Add("h" + i.ToString(CultureInfo.InvariantCulture), small);
        }

        return new HostileMessage("huge headers", null, Make("unknown event type"), headers);
    }

    /// <summary>A 10 MB value of random bytes: it does not compress, so it fills a broker partition by itself.</summary>
    public HostileMessage HugeRandom()
    {
        var value = new byte[TenMegabytes];
        random.NextBytes(value);
        return new HostileMessage("10 MB random", null, value, null);
    }

    /// <summary>A 10 MB value that compresses well: an event with a huge payload string, a huge nesting, or one long string.</summary>
    public HostileMessage HugeCompressible()
    {
        switch (random.Next(3))
        {
            case 0:
                var node = Event();
                node["payload"]!["note"] = new string('x', TenMegabytes);
                return new HostileMessage("10 MB event", null, Encoding.UTF8.GetBytes(node.ToJsonString()), null);
            case 1:
                var nested = new byte[TenMegabytes];
                nested.AsSpan(0, TenMegabytes / 2).Fill((byte)'[');
                nested.AsSpan(TenMegabytes / 2).Fill((byte)']');
                return new HostileMessage("10 MB nesting", null, nested, null);
            default:
                var text = new byte[TenMegabytes];
                text.AsSpan().Fill((byte)'a');
                text[0] = (byte)'"';
                text[^1] = (byte)'"';
                return new HostileMessage("10 MB string", null, text, null);
        }
    }

    private byte[]? Make(string kind)
    {
        switch (kind)
        {
            case "random bytes":
                var bytes = new byte[1 + random.Next(2048)];
                random.NextBytes(bytes);
                if (bytes[0] == (byte)'{')
                {
                    bytes[0] = 0; // a random object start is still invalid, but keep the kind honest
                }

                return bytes;
            case "truncated json":
                var json = Valid();
                return json[..(1 + random.Next(json.Length - 1))];
            case "deep nesting":
                return DeepNesting(33 + random.Next(20_000));
            case "wrong type":
                return WrongType();
            case "past timestamp":
                return WithTimestamp(random.Next(4) switch
                {
                    0 => "0001-01-01T00:00:00Z",
                    1 => "1970-01-01T00:00:00Z",
                    2 => "1999-12-31T23:59:59.999Z",
                    _ => new DateTime(1900 + random.Next(100), 1 + random.Next(12), 1 + random.Next(28), 0, 0, 0, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                });
            case "future timestamp":
                return WithTimestamp(random.Next(3) switch
                {
                    0 => "9999-12-31T23:59:59.999Z",
                    1 => DateTime.UtcNow.AddHours(2 + random.Next(1000)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    _ => DateTime.UtcNow.AddYears(1 + random.Next(5000)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                });
            case "unknown event type":
                var unknown = Event();
                unknown["eventType"] = random.Next(2) == 0 ? "user.action.teleport" : "x" + random.Next().ToString(CultureInfo.InvariantCulture);
                return Bytes(unknown);
            case "invalid utf-8":
                return InvalidUtf8();
            case "null value":
                return null;
            case "empty value":
                return [];
            case "not an object":
                return Encoding.UTF8.GetBytes(random.Next(5) switch { 0 => "[]", 1 => "42", 2 => "null", 3 => "\"event\"", _ => "true" });
            case "missing field":
                var missing = Event();
                missing.Remove(Required[random.Next(Required.Length)]);
                return Bytes(missing);
            case "extra field":
                var extra = Event();
                extra["hostile" + random.Next(1000).ToString(CultureInfo.InvariantCulture)] = "x";
                return Bytes(extra);
            case "bad timestamp text":
                return WithTimestamp(random.Next(3) switch { 0 => "yesterday", 1 => "2026-13-45T25:61:61Z", _ => string.Empty });
            case "bad uuid":
                var badId = Event();
                badId["eventId"] = random.Next(2) == 0 ? "not-a-uuid" : "123e4567-e89b-12d3-a456-42661417400Z";
                return Bytes(badId);
            case "out of range":
                var checkout = Event("user.action.checkout");
                if (random.Next(2) == 0)
                {
                    checkout["payload"]!["items"]![0]!["quantity"] = random.Next(2) == 0 ? -1 : 0;
                }
                else
                {
                    checkout["payload"]!["cartValue"] = random.Next(2) == 0 ? -1 : 2_000_000;
                }

                return Bytes(checkout);
            case "json with comment":
                var text = Encoding.UTF8.GetString(Valid());
                return Encoding.UTF8.GetBytes("/* hi */" + text);
            default: // "trailing junk"
                return [.. Valid(), .. "}garbage"u8];
        }
    }

    private byte[] Valid() => generator.Next(DateTime.UtcNow).Json;

    private JsonObject Event(string? type = null)
    {
        var e = type is null ? generator.Next(DateTime.UtcNow) : generator.Next(type, DateTime.UtcNow);
        return (JsonObject)JsonNode.Parse(e.Json)!;
    }

    private static byte[] Bytes(JsonObject node) => Encoding.UTF8.GetBytes(node.ToJsonString());

    private byte[] WithTimestamp(string timestamp)
    {
        var node = Event();
        node["timestamp"] = timestamp;
        return Bytes(node);
    }

    private byte[] WrongType()
    {
        var node = Event("user.action.checkout");
        switch (random.Next(8))
        {
            case 0: node["eventId"] = 123; break;
            case 1: node["eventType"] = 5; break;
            case 2: node["timestamp"] = true; break;
            case 3: node["userId"] = new JsonArray(); break;
            case 4: node["payload"] = "payload"; break;
            case 5: node["metadata"] = 1; break;
            case 6: node["payload"]!["cartValue"] = "lots"; break;
            default: node["userId"] = null; break;
        }

        return Bytes(node);
    }

    private byte[] DeepNesting(int depth)
    {
        if (random.Next(2) == 0)
        {
            // Bare arrays.
            var bytes = new byte[depth * 2];
            bytes.AsSpan(0, depth).Fill((byte)'[');
            bytes.AsSpan(depth).Fill((byte)']');
            return bytes;
        }

        // A plausible event whose payload nests too deep.
        var text = Encoding.UTF8.GetString(Valid());
        var at = text.IndexOf("\"payload\":{", StringComparison.Ordinal) + "\"payload\":{".Length;
        var inner = new StringBuilder(depth * 6);
        for (var i = 0; i < depth; i++)
        {
            inner.Append("\"a\":{");
        }

        inner.Append(new string('}', depth)).Append(',');
        return Encoding.UTF8.GetBytes(text.Insert(at, inner.ToString()));
    }

    private byte[] InvalidUtf8()
    {
        var json = Valid();
        var text = Encoding.UTF8.GetString(json);
        var at = text.IndexOf("\"userId\":\"", StringComparison.Ordinal) + "\"userId\":\"".Length;
        byte[] bad = random.Next(4) switch
        {
            0 => [0xFF],
            1 => [0xC0, 0xAF], // overlong '/'
            2 => [0xED, 0xA0, 0x80], // UTF-16 surrogate encoded in UTF-8
            _ => [0xE2, 0x82], // truncated sequence
        };
        return [.. json.AsSpan(0, at), .. bad, .. json.AsSpan(at)];
    }
}
