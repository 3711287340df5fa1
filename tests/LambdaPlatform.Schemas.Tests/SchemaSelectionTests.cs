using System.Text;
using System.Text.Json.Nodes;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// Which payload schema version checks an event: the one <c>metadata.schemaVersion</c> names, else the newest version
/// the payload passes (newest first); <c>metadata.version</c>, the app's version, selects nothing.
/// </summary>
public sealed class SchemaSelectionTests : IDisposable
{
    private static readonly DateTime Now = new(2024, 12, 20, 12, 0, 0, DateTimeKind.Utc);
    private static readonly EventSchemaRegistry Registry = EventSchemaRegistry.LoadDefault();
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "selection-" + Guid.NewGuid().ToString("N"));

    /// <summary>The event of issue 10 exactly as producers send it (spacing included), with a real UUID v4.</summary>
    private const string Canonical = """
        {"eventId": "6f1c2a9e-4b7d-4c1e-9f3a-2d5b8e7c1a40", "eventType": "user.action.checkout", "timestamp": "2024-12-20T10:30:00Z",
         "userId": "user-12345", "payload": {"cartValue": 149.99, "items": [{"sku": "SKU-1", "quantity": 1, "price": 149.99}],
         "location": "store-5678"}, "metadata": {"source": "mobile-app", "version": "2.5.1"}}
        """;

    /// <summary>A checkout as the generator shipped before the canonical shape wrote it (user.action.checkout v1).</summary>
    private const string OldShape = """
        {"eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d","eventType":"user.action.checkout","timestamp":"2024-12-20T11:59:00.123Z","userId":"u000042","payload":{"location":"berlin","cartValue":59.9,"currency":"EUR","items":2},"metadata":{"source":"web","version":"1"}}
        """;

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static EventDecoder NewDecoder(EventSchemaRegistry? registry = null) =>
        new(registry ?? Registry, new EventDecoderOptions { Clock = new FixedClock(Now) });

    private static DecodedEvent Accept(string json, EventSchemaRegistry? registry = null)
    {
        Assert.True(NewDecoder(registry).TryDecode(Encoding.UTF8.GetBytes(json), out var e, out var v), v?.ToString());
        return e!;
    }

    private static Violation Reject(string json, EventSchemaRegistry? registry = null)
    {
        Assert.False(NewDecoder(registry).TryDecode(Encoding.UTF8.GetBytes(json), out var e, out var v), "expected a rejection of " + json);
        Assert.Null(e);
        return v!;
    }

    private static string With(string json, Action<JsonObject> change)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    private static string Named(string json, string schemaVersion) => With(json, n => n["metadata"]!["schemaVersion"] = schemaVersion);

    [Fact]
    public void TryDecode_AcceptsTheCanonicalEvent_AsProducersSendIt()
    {
        var e = Accept(Canonical);
        Assert.Equal(Guid.Parse("6f1c2a9e-4b7d-4c1e-9f3a-2d5b8e7c1a40"), e.EventId);
        Assert.Equal("user.action.checkout", e.EventType);
        Assert.Equal(new DateTime(2024, 12, 20, 10, 30, 0, DateTimeKind.Utc), e.Timestamp);
        Assert.Equal("user-12345", e.UserId);
        Assert.Equal("mobile-app", e.Source);
        Assert.Equal("2.5.1", e.Version);
        Assert.Equal("2", e.SchemaVersion);
        Assert.Equal(
            "{\"cartValue\": 149.99, \"items\": [{\"sku\": \"SKU-1\", \"quantity\": 1, \"price\": 149.99}],\n \"location\": \"store-5678\"}",
            Encoding.UTF8.GetString(e.Payload.Span).ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("currency", "\"JPY\"")]
    [InlineData("coupon", "null")]
    [InlineData("coupon", "\"XMAS24\"")]
    [InlineData("channel", "\"push\"")] // a property v2 does not declare: payload schemas from v2 on are open
    public void TryDecode_AcceptsTheCanonicalEvent_WithOptionalOrUndeclaredFields(string field, string value)
    {
        var json = With(Canonical, n => n["payload"]![field] = JsonNode.Parse(value));
        Assert.Equal("2", Accept(json).SchemaVersion);
    }

    [Fact]
    public void TryDecode_AcceptsManyLineItems_UpToMaxItems()
    {
        JsonArray Lines(int n) => [.. Enumerable.Range(0, n).Select(i => (JsonNode)new JsonObject { ["sku"] = "SKU-" + i, ["quantity"] = 1 + (i % 3), ["price"] = 0.5 * i })];
        Assert.Equal("2", Accept(With(Canonical, n => n["payload"]!["items"] = Lines(1_000))).SchemaVersion);
        var v = Reject(With(Canonical, n => n["payload"]!["items"] = Lines(1_001)));
        Assert.Equal(("maxItems", "$.payload.items"), (v.Rule, v.Path));
        v = Reject(With(Canonical, n => n["payload"]!["items"] = Lines(0)));
        Assert.Equal(("minItems", "$.payload.items"), (v.Rule, v.Path));
    }

    [Theory]
    [InlineData("2.5.1")]
    [InlineData("1")]
    [InlineData("2")]
    [InlineData("7")]
    [InlineData("3.0.0-beta.1+build.77")]
    [InlineData("an app version string of exactly sixty-four characters: accepted")]
    public void TryDecode_SelectsNoSchema_ByMetadataVersion(string appVersion)
    {
        var canonical = Accept(With(Canonical, n => n["metadata"]!["version"] = appVersion));
        Assert.Equal((appVersion, "2"), (canonical.Version, canonical.SchemaVersion));
        var old = Accept(With(OldShape, n => n["metadata"]!["version"] = appVersion));
        Assert.Equal((appVersion, "1"), (old.Version, old.SchemaVersion));
    }

    [Fact]
    public void TryDecode_RejectsMetadataVersion_LongerThan64Characters()
    {
        var v = Reject(With(Canonical, n => n["metadata"]!["version"] = new string('9', 65)));
        Assert.Equal(("maxLength", "$.metadata.version"), (v.Rule, v.Path));
    }

    [Fact]
    public void TryDecode_ChecksOnlyTheNamedVersion_WhenMetadataNamesOne()
    {
        Assert.Equal("1", Accept(Named(OldShape, "1")).SchemaVersion);
        Assert.Equal("2", Accept(Named(Canonical, "2")).SchemaVersion);

        // Named, so no other version is tried: each shape is refused by the other's version, with that version's reason.
        var v1 = Reject(Named(Canonical, "1"));
        Assert.Equal(("type", "$.payload.items", "$.payload.items: expected integer, got array (type)"), (v1.Rule, v1.Path, v1.ToString()));
        var v2 = Reject(Named(OldShape, "2"));
        Assert.Equal(("type", "$.payload.items", "$.payload.items: expected array, got integer (type)"), (v2.Rule, v2.Path, v2.ToString()));
    }

    [Theory]
    [InlineData("7")]
    [InlineData("01")]
    [InlineData("0")]
    [InlineData("2.5.1")]
    [InlineData("v2")]
    public void TryDecode_RejectsUnknownNamedVersion_NamingIt(string schemaVersion)
    {
        var v = Reject(Named(Canonical, schemaVersion));
        Assert.Equal(("schemaVersion", "$.metadata.schemaVersion"), (v.Rule, v.Path));
        Assert.Contains($"event type 'user.action.checkout' has no schema version '{schemaVersion}' (known: 1, 2", v.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryDecode_RejectsUnknownNamedVersion_WhenItIsEscaped()
    {
        // Escaped values are read in the decoder's second pass over metadata; the verdicts must not differ.
        var json = Named(Canonical, "PLACEHOLDER");
        Assert.Equal("7", Reject(json.Replace("PLACEHOLDER", "\\u0037", StringComparison.Ordinal)).Message.Split('\'')[3]);
        Assert.Equal("2", Accept(json.Replace("PLACEHOLDER", "\\u0032", StringComparison.Ordinal)).SchemaVersion);
        var v1 = Reject(json.Replace("PLACEHOLDER", "\\u0031", StringComparison.Ordinal));
        Assert.Equal("$.payload.items", v1.Path);
    }

    [Fact]
    public void TryDecode_RejectsEmptyOrNonStringSchemaVersion()
    {
        var empty = Reject(Named(Canonical, ""));
        Assert.Equal(("minLength", "$.metadata.schemaVersion"), (empty.Rule, empty.Path));
        var number = Reject(With(Canonical, n => n["metadata"]!["schemaVersion"] = 2));
        Assert.Equal(("type", "$.metadata.schemaVersion"), (number.Rule, number.Path));
    }

    [Fact]
    public void TryDecode_AcceptsEveryEventOfTheOldGenerator()
    {
        var generator = new LegacyEventGenerator(new EventGeneratorOptions { Seed = 17 });
        var decoder = NewDecoder();
        var checkouts = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var g = generator.Next(Now.AddSeconds(-i));
            Assert.True(decoder.TryDecode(g.Json, out var e, out var v), $"{v} in {Encoding.UTF8.GetString(g.Json)}");
            Assert.Equal((g.EventId, g.EventType, g.UserId, g.Timestamp), (e!.EventId, e.EventType, e.UserId, e.Timestamp));
            Assert.Equal(("1", "1"), (e.Version, e.SchemaVersion));
            checkouts += g.EventType == "user.action.checkout" ? 1 : 0;
        }

        Assert.True(checkouts > 1_000, $"only {checkouts} old checkouts");
    }

    [Fact]
    public void TryDecode_ReportsTheNewestVersionsViolation_WhenNoVersionAccepts()
    {
        // An old-shape checkout without its required currency: v2 refuses the integer items, v1 the missing currency.
        var noCurrency = Reject(With(OldShape, n => n["payload"]!.AsObject().Remove("currency")));
        Assert.Equal("$.payload.items: expected array, got integer (type)", noCurrency.ToString());

        var zero = Reject(With(Canonical, n => n["payload"]!["items"]![0]!["quantity"] = 0));
        Assert.Equal(("minimum", "$.payload.items[0].quantity"), (zero.Rule, zero.Path));
        var currency = Reject(With(Canonical, n => n["payload"]!["currency"] = "XYZ"));
        Assert.Equal(("enum", "$.payload.currency"), (currency.Rule, currency.Path));
    }

    [Fact]
    public void TryDecode_AcceptsBothShapes_WhenANewVersionAddsAnOptionalField()
    {
        var registry = Types(("v1", """{"type":"object","required":["a"],"additionalProperties":false,"properties":{"a":{"type":"integer"}}}"""),
            ("v2", """{"type":"object","required":["a"],"additionalProperties":false,"properties":{"a":{"type":"integer"},"b":{"type":"string"}}}"""));

        Assert.Equal("2", Accept(Event("""{"a":1}"""), registry).SchemaVersion);
        Assert.Equal("2", Accept(Event("""{"a":1,"b":"x"}"""), registry).SchemaVersion);
        Assert.Equal("1", Accept(Event("""{"a":1}""", schemaVersion: "1"), registry).SchemaVersion);

        var named = Reject(Event("""{"a":1,"b":"x"}""", schemaVersion: "1"), registry);
        Assert.Equal(("additionalProperties", "$.payload.b"), (named.Rule, named.Path));
        var neither = Reject(Event("""{"a":1,"b":5}"""), registry);
        Assert.Equal("$.payload.b: expected string, got integer (type)", neither.ToString());
    }

    [Fact]
    public void TryDecode_FallsBackToAnOlderVersion_WhenTheNewestRequiresMore()
    {
        // v2 is not backward compatible (it requires c): events of v1's shape still decode, as v1.
        var registry = Types(("v1", """{"type":"object","required":["a"],"properties":{"a":{"type":"integer"}}}"""),
            ("v2", """{"type":"object","required":["a","c"],"properties":{"a":{"type":"integer"},"c":{"type":"string"}}}"""));

        Assert.Equal("1", Accept(Event("""{"a":1}"""), registry).SchemaVersion);
        Assert.Equal("2", Accept(Event("""{"a":1,"c":"x"}"""), registry).SchemaVersion);
        var v = Reject(Event("""{"a":1}""", schemaVersion: "2"), registry);
        Assert.Equal(("required", "$.payload"), (v.Rule, v.Path));
    }

    [Fact]
    public void TryDecode_TriesVersionsNewestFirst_ComparingThemAsNumbers()
    {
        // Ordinal order would make v9 the newest; v10 is. Each payload passes exactly one version except {"n":1}.
        var registry = Types(("v2", """{"type":"object","required":["two"]}"""),
            ("v9", """{"type":"object","required":["nine"]}"""),
            ("v10", """{"type":"object","required":["ten"]}"""));

        Assert.Equal(["2", "9", "10"], registry.Find("t.x")!.Versions.Select(v => v.Version));
        Assert.Equal("10", registry.Find("t.x")!.Newest.Version);
        Assert.Equal("10", Accept(Event("""{"ten":1,"nine":1,"two":1}"""), registry).SchemaVersion);
        Assert.Equal("9", Accept(Event("""{"nine":1,"two":1}"""), registry).SchemaVersion);
        Assert.Equal("2", Accept(Event("""{"two":1}"""), registry).SchemaVersion);
        var none = Reject(Event("""{"n":1}"""), registry);
        Assert.Equal("$.payload: required property 'ten' is missing (required)", none.ToString());
    }

    [Fact]
    public void TryDecode_PicksTheSameVersion_InEveryFieldOrder()
    {
        // Payload before eventType is checked after the envelope's pass, not in it: same verdicts, same versions.
        var old = JsonNode.Parse(OldShape)!.AsObject();
        var reordered = new JsonObject
        {
            ["payload"] = old["payload"]!.DeepClone(),
            ["metadata"] = old["metadata"]!.DeepClone(),
            ["eventId"] = old["eventId"]!.DeepClone(),
            ["eventType"] = old["eventType"]!.DeepClone(),
            ["timestamp"] = old["timestamp"]!.DeepClone(),
            ["userId"] = old["userId"]!.DeepClone(),
        };
        Assert.Equal("1", Accept(reordered.ToJsonString()).SchemaVersion);
        reordered["payload"] = JsonNode.Parse(Canonical)!["payload"]!.DeepClone();
        Assert.Equal("2", Accept(reordered.ToJsonString()).SchemaVersion);
        reordered["metadata"]!["schemaVersion"] = "1";
        Assert.Equal("$.payload.items", Reject(reordered.ToJsonString()).Path);
    }

    private EventSchemaRegistry Types(params (string File, string Schema)[] versions)
    {
        Directory.CreateDirectory(Path.Combine(_dir, "t.x"));
        File.Copy(Path.Combine(Registry.Directory, "envelope.schema.json"), Path.Combine(_dir, "envelope.schema.json"));
        foreach (var (file, schema) in versions)
        {
            File.WriteAllText(Path.Combine(_dir, "t.x", file + ".schema.json"), schema);
        }

        return EventSchemaRegistry.Load(_dir);
    }

    private static string Event(string payload, string? schemaVersion = null) =>
        $$$"""{"eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d","eventType":"t.x","timestamp":"2024-12-20T11:00:00Z","userId":"u1","payload":{{{payload}}},"metadata":{"source":"web","version":"2.5.1"{{{(schemaVersion is null ? "" : $",\"schemaVersion\":\"{schemaVersion}\"")}}}}}""";

    private sealed class FixedClock(DateTime utcNow) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(utcNow);
    }
}
