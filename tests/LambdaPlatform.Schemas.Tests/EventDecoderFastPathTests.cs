using System.Text;
using System.Text.Json.Nodes;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// The decoder's shortcuts (in-pass payload and metadata checks, raw-byte comparisons, hand-written
/// parsers, the reused clock reading) must not change any verdict, value or reported violation.
/// </summary>
public sealed class EventDecoderFastPathTests : IDisposable
{
    private static readonly DateTime Now = new(2026, 11, 28, 12, 0, 0, DateTimeKind.Utc);
    private static readonly EventSchemaRegistry Registry = EventSchemaRegistry.LoadDefault();
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "decoder-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static EventDecoder NewDecoder(EventSchemaRegistry? registry = null, TimeProvider? clock = null) =>
        new(registry ?? Registry, new EventDecoderOptions { Clock = clock ?? new ManualClock(Now) });

    private const string Checkout = """
        {"eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d","eventType":"user.action.checkout","timestamp":"2026-11-28T11:59:00.123Z","userId":"u000042","payload":{"cartValue":59.9,"items":[{"sku":"SKU-1","quantity":2,"price":29.95}],"location":"berlin","currency":"EUR"},"metadata":{"source":"web","version":"2.5.1"}}
        """;

    /// <summary>The same checkout in the shape of user.action.checkout v1 (the generator's before the canonical shape).</summary>
    private const string OldCheckout = """
        {"eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d","eventType":"user.action.checkout","timestamp":"2026-11-28T11:59:00.123Z","userId":"u000042","payload":{"location":"berlin","cartValue":59.9,"currency":"EUR","items":2},"metadata":{"source":"web","version":"1"}}
        """;

    private static DecodedEvent Accept(EventDecoder decoder, string json)
    {
        Assert.True(decoder.TryDecode(Encoding.UTF8.GetBytes(json), out var e, out var v), v?.ToString());
        return e!;
    }

    private static Violation Reject(EventDecoder decoder, string json)
    {
        Assert.False(decoder.TryDecode(Encoding.UTF8.GetBytes(json), out var e, out var v));
        Assert.Null(e);
        return v!;
    }

    private static void AssertSameEvent(DecodedEvent expected, DecodedEvent actual)
    {
        Assert.Equal(expected.EventId, actual.EventId);
        Assert.Same(expected.EventType, actual.EventType);
        Assert.Equal(expected.Timestamp, actual.Timestamp);
        Assert.Equal(expected.Timestamp.Kind, actual.Timestamp.Kind);
        Assert.Equal(expected.UserId, actual.UserId);
        Assert.Equal(expected.Source, actual.Source);
        Assert.Same(expected.Version, actual.Version);
        Assert.Same(expected.SchemaVersion, actual.SchemaVersion);
    }

    [Theory]
    [InlineData("\"eventType\":\"user.action.checkout\"", "\"eventType\":\"user.action.\\u0063heckout\"")]
    [InlineData("\"eventId\":\"7d9f4c9e", "\"eventId\":\"\\u0037d9f4c9e")]
    [InlineData("\"timestamp\":\"2026", "\"timestamp\":\"\\u0032026")]
    [InlineData("\"source\":\"web\"", "\"source\":\"w\\u0065b\"")]
    [InlineData("\"version\":\"2.5.1\"", "\"version\":\"\\u0032.5.1\"")]
    [InlineData("\"version\":\"2.5.1\"", "\"\\u0076ersion\":\"2.5.1\"")]
    [InlineData("\"version\":\"2.5.1\"", "\"version\":\"2.5.1\",\"schemaVersion\":\"\\u0032\"")]
    [InlineData("\"version\":\"2.5.1\"", "\"version\":\"2.5.1\",\"schem\\u0061Version\":\"2\"")]
    [InlineData("\"sku\":\"SKU-1\"", "\"sku\":\"SKU\\u002d1\"")]
    [InlineData("\"eventId\":", "\"\\u0065ventId\":")]
    [InlineData("\"location\":", "\"loc\\u0061tion\":")]
    [InlineData("\"currency\":\"EUR\"", "\"currency\":\"\\u0045UR\"")]
    [InlineData("\"userId\":\"u000042\"", "\"userId\":\"u\\u0030\\u0030\\u0030042\"")]
    public void TryDecode_GivesSameEvent_WhenStringsAreEscaped(string plain, string escaped)
    {
        var decoder = NewDecoder();
        var expected = Accept(decoder, Checkout);
        AssertSameEvent(expected, Accept(decoder, Checkout.Replace(plain, escaped, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryDecode_GivesSameEvent_InAnyPropertyOrder(bool oldGenerator)
    {
        var options = new EventGeneratorOptions { Seed = 3 };
        Func<DateTime, GeneratedEvent> next = oldGenerator ? new LegacyEventGenerator(options).Next : new EventGenerator(options).Next;
        var random = new Random(4);
        var decoder = NewDecoder();
        for (var i = 0; i < 2_000; i++)
        {
            var json = Encoding.UTF8.GetString(next(Now.AddSeconds(-i)).Json);
            var expected = Accept(decoder, json);
            var node = JsonNode.Parse(json)!.AsObject();
            var shuffled = Shuffle(node, random);
            shuffled["payload"] = Shuffle(node["payload"]!.AsObject(), random);
            shuffled["metadata"] = Shuffle(node["metadata"]!.AsObject(), random);
            AssertSameEvent(expected, Accept(decoder, shuffled.ToJsonString()));
        }
    }

    [Theory]
    [InlineData("2026-11-28T13:30:00+01:30", "2026-11-28T12:00:00.0000000Z")]
    [InlineData("2026-11-28T06:15:00.1234567-05:45", "2026-11-28T12:00:00.1234567Z")]
    [InlineData("2026-11-28T11:00:00.123456789Z", "2026-11-28T11:00:00.1234567Z")] // digits past the 7th are dropped, as Utf8JsonReader does
    [InlineData("2026-11-28T11:00:00.5Z", "2026-11-28T11:00:00.5000000Z")]
    [InlineData("2026-11-28T11:00Z", "2026-11-28T11:00:00.0000000Z")]
    [InlineData("2026-11-28T11:00:00.Z", "2026-11-28T11:00:00.0000000Z")]
    public void TryDecode_ConvertsTimestampToUtc_ForOffsetsAndFractions(string timestamp, string utc)
    {
        var e = Accept(NewDecoder(), Checkout.Replace("2026-11-28T11:59:00.123Z", timestamp, StringComparison.Ordinal));
        Assert.Equal(utc, e.Timestamp.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData(",\"extra\":1}", "additionalProperties", "$.extra")] // after the payload
    [InlineData(",\"userId\":\"u2\"}", "duplicate", "$.userId")]
    [InlineData(",}", "json", "$")]
    public void TryDecode_ReportsLaterEnvelopeError_BeforePayloadViolation(string tail, string rule, string path)
    {
        // cartValue breaks the payload schema; the envelope error that follows it must still be reported first,
        // as when the payload was checked after the whole envelope.
        var json = Checkout.Replace("\"cartValue\":59.9", "\"cartValue\":\"59.9\"", StringComparison.Ordinal)[..^1] + tail;
        var v = Reject(NewDecoder(), json);
        Assert.Equal(rule, v.Rule);
        Assert.Equal(path, v.Path);
    }

    [Theory]
    [InlineData(Checkout)]
    [InlineData(OldCheckout)]
    public void TryDecode_GivesSameEvent_WhenSchemaVersionNamesTheVersionItWouldGet(string json)
    {
        // Naming the version the rule would pick anyway changes nothing, in the envelope's pass or the second one.
        var decoder = NewDecoder();
        var expected = Accept(decoder, json);
        var named = json.Replace("\"source\":\"web\"", $"\"source\":\"web\",\"schemaVersion\":\"{expected.SchemaVersion}\"", StringComparison.Ordinal);
        AssertSameEvent(expected, Accept(decoder, named));
        AssertSameEvent(expected, Accept(decoder, named.Replace("\"source\":\"web\"", "\"source\":\"w\\u0065b\"", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("\"schemaVersion\":\"9\"")]
    [InlineData("\"schemaVersion\":\"\\u0039\"")]
    public void TryDecode_ReportsUnknownSchemaVersion_BeforePayloadViolation(string schemaVersion)
    {
        var json = Checkout.Replace("\"quantity\":2", "\"quantity\":0", StringComparison.Ordinal)
            .Replace("\"version\":\"2.5.1\"", "\"version\":\"2.5.1\"," + schemaVersion, StringComparison.Ordinal);
        Assert.Equal("$.metadata.schemaVersion", Reject(NewDecoder(), json).Path);
    }

    [Fact]
    public void TryDecode_GivesOldShapeSameFieldsAsBefore_ThroughTheFallback()
    {
        // The old shape fails the newest version in the envelope's pass and is accepted by v1 after it.
        var e = Accept(NewDecoder(), OldCheckout);
        Assert.Equal(("1", "1", "web"), (e.SchemaVersion, e.Version, e.Source));
        Assert.Equal("""{"location":"berlin","cartValue":59.9,"currency":"EUR","items":2}""", Encoding.UTF8.GetString(e.Payload.Span));
    }

    [Fact]
    public void TryDecode_ChecksPayloadAgainstNamedVersion_WhenNewerVersionsExist()
    {
        // v2 of t.x requires "b"; v1 requires "a". The payload is checked in the envelope's pass against the
        // newest version, so an event naming v1 must be re-checked against v1.
        Directory.CreateDirectory(Path.Combine(_dir, "t.x"));
        File.Copy(Path.Combine(Registry.Directory, "envelope.schema.json"), Path.Combine(_dir, "envelope.schema.json"));
        File.WriteAllText(Path.Combine(_dir, "t.x", "v1.schema.json"), """{"type":"object","required":["a"],"additionalProperties":false,"properties":{"a":{"type":"integer"}}}""");
        File.WriteAllText(Path.Combine(_dir, "t.x", "v2.schema.json"), """{"type":"object","required":["b"],"additionalProperties":false,"properties":{"b":{"type":"string"}}}""");
        var decoder = NewDecoder(EventSchemaRegistry.Load(_dir));
        string Event(string payload, string version) =>
            $$$"""{"eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d","eventType":"t.x","timestamp":"2026-11-28T11:00:00Z","userId":"u1","payload":{{{payload}}},"metadata":{"source":"web","version":"2.5.1","schemaVersion":"{{{version}}}"}}""";

        Assert.Equal("1", Accept(decoder, Event("""{"a":1}""", "1")).SchemaVersion);
        Assert.Equal("2", Accept(decoder, Event("""{"b":"x"}""", "2")).SchemaVersion);
        var v1 = Reject(decoder, Event("""{"b":"x"}""", "1"));
        Assert.Equal(("additionalProperties", "$.payload.b"), (v1.Rule, v1.Path));
        var v2 = Reject(decoder, Event("""{"a":1}""", "2"));
        Assert.Equal(("additionalProperties", "$.payload.a"), (v2.Rule, v2.Path));
    }

    [Theory]
    [InlineData("\\n7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d")]
    [InlineData("7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d\\t")]
    [InlineData("\\u00207d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d")]
    [InlineData("{7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d}")]
    public void TryDecode_RejectsWithFormatRule_WhenEscapedEventIdIsNotExactlyAUuid(string eventId)
    {
        // Guid.TryParseExact trims whitespace; an escaped newline once passed validation and then threw.
        var v = Reject(NewDecoder(), Checkout.Replace("7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d", eventId, StringComparison.Ordinal));
        Assert.Equal(("format", "$.eventId"), (v.Rule, v.Path));
    }

    [Fact]
    public void TryDecode_ReadsInjectedClockForEveryEvent()
    {
        var clock = new ManualClock(Now);
        var decoder = NewDecoder(clock: clock);
        Accept(decoder, Checkout);
        clock.UtcNow = Now.AddHours(-2); // the event is now 2 h ahead of the clock, 1 h is allowed
        var v = Reject(decoder, Checkout);
        Assert.Equal("timestamp", v.Rule);
        clock.UtcNow = Now;
        Accept(decoder, Checkout);
    }

    [Fact]
    public void TryDecode_RejectsFutureEvent_WithSystemClock()
    {
        var decoder = new EventDecoder(Registry);
        var json = Checkout.Replace("2026-11-28T11:59:00.123Z", DateTime.UtcNow.AddMinutes(-1).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var future = Checkout.Replace("2026-11-28T11:59:00.123Z", DateTime.UtcNow.AddHours(2).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        for (var i = 0; i < 3_000; i++)
        {
            Accept(decoder, json);
            if (i % 700 == 0)
            {
                Assert.Equal("timestamp", Reject(decoder, future).Rule);
            }
        }
    }

    [Fact]
    public void TryDecode_DoesNotThrow_WhenFutureSkewIsHuge()
    {
        var decoder = new EventDecoder(Registry, new EventDecoderOptions { MaxFutureSkew = TimeSpan.MaxValue });
        Accept(decoder, Checkout);
    }

    [Fact]
    public void TryDecode_AllocatesOnlyTheEventAndItsUserId()
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 5 });
        var events = Enumerable.Range(0, 1_000).Select(i => generator.Next(Now.AddSeconds(-i)).Json).ToArray();
        var decoder = NewDecoder();
        for (var round = 0; round < 3; round++)
        {
            foreach (var e in events)
            {
                decoder.TryDecode(e, out _, out _);
            }
        }

        // What the allowed objects cost on this runtime: the event and a 7-character user id per event.
        var sink = new object[events.Length * 2];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < events.Length; i++)
        {
            sink[2 * i] = new DecodedEvent { EventId = default, EventType = "", Timestamp = default, UserId = "", Source = "", Version = "", SchemaVersion = "", Payload = default, Raw = default };
            sink[(2 * i) + 1] = new string('u', 7);
        }

        var allowed = GC.GetAllocatedBytesForCurrentThread() - before;

        before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var e in events)
        {
            Assert.True(decoder.TryDecode(e, out _, out _));
        }

        var used = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(used <= allowed, $"decoding allocated {used / (double)events.Length:F1} B per event, allowed {allowed / (double)events.Length:F1}");
        GC.KeepAlive(sink);
    }

    private static JsonObject Shuffle(JsonObject node, Random random)
    {
        var pairs = node.Select(p => (p.Key, Value: p.Value?.DeepClone())).ToArray();
        random.Shuffle(pairs);
        var result = new JsonObject();
        foreach (var (key, value) in pairs)
        {
            result[key] = value;
        }

        return result;
    }

    private sealed class ManualClock(DateTime utcNow) : TimeProvider
    {
        public DateTime UtcNow { get; set; } = utcNow;

        public override DateTimeOffset GetUtcNow() => new(UtcNow);
    }
}
