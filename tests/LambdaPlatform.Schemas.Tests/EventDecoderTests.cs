using System.Text;
using System.Text.Json.Nodes;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Tests;

public sealed class EventDecoderTests
{
    private static readonly DateTime Now = new(2026, 11, 28, 12, 0, 0, DateTimeKind.Utc);
    private static readonly EventSchemaRegistry Registry = EventSchemaRegistry.LoadDefault();

    private static EventDecoder NewDecoder() => new(Registry, new EventDecoderOptions { Clock = new FixedClock(Now) });

    private static JsonObject ValidCheckout() => JsonNode.Parse("""
        {"eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d","eventType":"user.action.checkout","timestamp":"2026-11-28T11:59:00.123Z",
         "userId":"u000042","payload":{"cartValue":59.9,"items":[{"sku":"SKU-1","quantity":2,"price":29.95}],"location":"berlin","currency":"EUR"},
         "metadata":{"source":"web","version":"2.5.1"}}
        """)!.AsObject();

    private static Violation Reject(string json) => Reject(Encoding.UTF8.GetBytes(json));

    private static Violation Reject(byte[] json)
    {
        var ok = NewDecoder().TryDecode(json, out var decoded, out var violation);
        Assert.False(ok, "expected a rejection");
        Assert.Null(decoded);
        return violation!;
    }

    [Fact]
    public void TryDecode_ReturnsFields_WhenEventIsValid()
    {
        var json = Encoding.UTF8.GetBytes(ValidCheckout().ToJsonString());
        Assert.True(NewDecoder().TryDecode(json, out var e, out var violation), violation?.ToString());
        Assert.Equal(Guid.Parse("7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d"), e!.EventId);
        Assert.Equal("user.action.checkout", e.EventType);
        Assert.Equal(new DateTime(2026, 11, 28, 11, 59, 0, 123, DateTimeKind.Utc), e.Timestamp);
        Assert.Equal(DateTimeKind.Utc, e.Timestamp.Kind);
        Assert.Equal("u000042", e.UserId);
        Assert.Equal("web", e.Source);
        Assert.Equal("2.5.1", e.Version);
        Assert.Equal("2", e.SchemaVersion);
        Assert.Equal("""{"cartValue":59.9,"items":[{"sku":"SKU-1","quantity":2,"price":29.95}],"location":"berlin","currency":"EUR"}""", Encoding.UTF8.GetString(e.Payload.Span));
    }

    [Fact]
    public void TryDecode_ConvertsOffsetToUtc_WhenTimestampHasOffset()
    {
        var node = ValidCheckout();
        node["timestamp"] = "2026-11-28T13:00:00+02:00";
        Assert.True(NewDecoder().TryDecode(Encoding.UTF8.GetBytes(node.ToJsonString()), out var e, out var v), v?.ToString());
        Assert.Equal(new DateTime(2026, 11, 28, 11, 0, 0, DateTimeKind.Utc), e!.Timestamp);
    }

    [Fact]
    public void TryDecode_AcceptsAnyPropertyOrder_WhenMetadataComesFirst()
    {
        var json = """{"metadata":{"version":"1","source":"ios"},"payload":{"query":"shoes","results":3},"userId":"u1","timestamp":"2026-11-28T10:00:00Z","eventType":"user.action.search","eventId":"7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d"}""";
        Assert.True(NewDecoder().TryDecode(Encoding.UTF8.GetBytes(json), out var e, out var v), v?.ToString());
        Assert.Equal("user.action.search", e!.EventType);
        Assert.Equal("ios", e.Source);
    }

    [Fact]
    public void TryDecode_RejectsWithJsonRule_WhenJsonIsMalformed()
    {
        var v = Reject("""{"eventId": "7d9f4c9e-2a55-4a6e-9a53-0c1f1a2b3c4d", "eventType": """);
        Assert.Equal("json", v.Rule);
        Assert.Contains("malformed JSON", v.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryDecode_NamesTheField_WhenRequiredFieldIsMissing()
    {
        var node = ValidCheckout();
        node.Remove("userId");
        var v = Reject(node.ToJsonString());
        Assert.Equal("required", v.Rule);
        Assert.Contains("'userId'", v.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryDecode_NamesThePayloadPath_WhenPayloadFieldIsMissing()
    {
        var node = ValidCheckout();
        node["payload"]!.AsObject().Remove("cartValue");
        var v = Reject(node.ToJsonString());
        Assert.Equal("$.payload", v.Path);
        Assert.Equal("required", v.Rule);
        Assert.Contains("'cartValue'", v.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryDecode_NamesPathAndRule_WhenTypeIsWrong()
    {
        var node = ValidCheckout();
        node["payload"]!["cartValue"] = "59.90";
        var v = Reject(node.ToJsonString());
        Assert.Equal("$.payload.cartValue", v.Path);
        Assert.Equal("type", v.Rule);
        Assert.Equal("$.payload.cartValue: expected number, got string (type)", v.ToString());
    }

    [Fact]
    public void TryDecode_RejectsFraction_WhenIntegerIsRequired()
    {
        var node = ValidCheckout();
        node["payload"]!["items"]![0]!["quantity"] = 1.5;
        Assert.Equal("$.payload.items[0].quantity", Reject(node.ToJsonString()).Path);
    }

    [Fact]
    public void TryDecode_ListsKnownTypes_WhenEventTypeIsUnknown()
    {
        var node = ValidCheckout();
        node["eventType"] = "user.action.teleport";
        var v = Reject(node.ToJsonString());
        Assert.Equal("eventType", v.Rule);
        Assert.Equal("$.eventType", v.Path);
        Assert.Contains("user.action.teleport", v.Message, StringComparison.Ordinal);
        Assert.Contains("user.action.checkout", v.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryDecode_RejectsUnknownSchemaVersion_WhenTheEventNamesIt()
    {
        var node = ValidCheckout();
        node["metadata"]!["schemaVersion"] = "7";
        var v = Reject(node.ToJsonString());
        Assert.Equal(("schemaVersion", "$.metadata.schemaVersion"), (v.Rule, v.Path));
        Assert.Contains("no schema version '7' (known: 1, 2", v.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("eventId", "not-a-uuid", "format")]
    [InlineData("timestamp", "2026-11-28 10:00:00", "format")]
    [InlineData("timestamp", "2026-11-28T10:00:00", "format")]
    [InlineData("timestamp", "1970-01-01T00:00:00Z", "timestamp")]
    [InlineData("timestamp", "2030-01-01T00:00:00Z", "timestamp")]
    [InlineData("userId", "", "minLength")]
    public void TryDecode_RejectsBadEnvelopeValue(string field, string value, string rule)
    {
        var node = ValidCheckout();
        node[field] = value;
        var v = Reject(node.ToJsonString());
        Assert.Equal(rule, v.Rule);
        Assert.Equal("$." + field, v.Path);
    }

    [Theory]
    [InlineData("}")]
    [InlineData("garbage")]
    [InlineData(" {}")]
    [InlineData("\n{\"eventId\":1}")]
    public void TryDecode_RejectsWithJsonRule_WhenDataFollowsTheEvent(string trailer)
    {
        var violation = Reject(ValidCheckout().ToJsonString() + trailer);
        Assert.Equal("json", violation.Rule);
    }

    [Fact]
    public void TryDecode_Accepts_WhenOnlyWhitespaceFollowsTheEvent()
    {
        var json = Encoding.UTF8.GetBytes(ValidCheckout().ToJsonString() + " \r\n\t");
        Assert.True(NewDecoder().TryDecode(json, out _, out var violation), violation?.ToString());
    }

    [Fact]
    public void TryDecode_RejectsUnknownEnvelopeProperty()
    {
        var node = ValidCheckout();
        node["secret"] = 1;
        var v = Reject(node.ToJsonString());
        Assert.Equal("additionalProperties", v.Rule);
        Assert.Equal("$.secret", v.Path);
    }

    [Fact]
    public void TryDecode_RejectsDuplicateProperty()
    {
        var json = ValidCheckout().ToJsonString().Replace("\"userId\":\"u000042\"", "\"userId\":\"u1\",\"userId\":\"u2\"", StringComparison.Ordinal);
        Assert.Equal("duplicate", Reject(json).Rule);
    }

    [Fact]
    public void TryDecode_RejectsInvalidUtf8()
    {
        var bytes = Encoding.UTF8.GetBytes(ValidCheckout().ToJsonString());
        var at = Array.IndexOf(bytes, (byte)'b'); // inside "berlin"
        bytes[at] = 0xC3;
        bytes[at + 1] = 0x28;
        Assert.Equal("utf8", Reject(bytes).Rule);
    }

    [Fact]
    public void TryDecode_RejectsOversizedEvent_BeforeParsing()
    {
        var big = new byte[(1 << 20) + 1];
        Array.Fill(big, (byte)' ');
        Assert.Equal("size", Reject(big).Rule);
    }

    [Fact]
    public void TryDecode_RejectsDeepNesting()
    {
        var node = ValidCheckout();
        var deep = new string('[', 100) + new string(']', 100);
        var json = node.ToJsonString().Replace("\"cartValue\":59.9", "\"cartValue\":" + deep, StringComparison.Ordinal);
        Assert.Equal("json", Reject(json).Rule);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("\"event\"")]
    [InlineData("{}")]
    [InlineData("{\"eventId\":")]
    public void TryDecode_NeverThrows_OnDegenerateInput(string json)
    {
        Assert.NotNull(Reject(json).Message);
    }

    [Fact]
    public void TryDecode_CountsCodePoints_ForMaxLength()
    {
        var node = ValidCheckout();
        node["payload"]!["location"] = string.Concat(Enumerable.Repeat("😀", 64)); // 64 code points, 128 UTF-16 units
        Assert.True(NewDecoder().TryDecode(Encoding.UTF8.GetBytes(node.ToJsonString()), out _, out var v), v?.ToString());
        node["payload"]!["location"] = string.Concat(Enumerable.Repeat("😀", 65));
        Assert.Equal("maxLength", Reject(node.ToJsonString()).Rule);
    }

    [Fact]
    public void TryDecode_AcceptsEveryGeneratedEvent()
    {
        var generator = new EventGenerator();
        var decoder = NewDecoder();
        for (var i = 0; i < 10_000; i++)
        {
            var g = generator.Next(Now.AddSeconds(-i));
            Assert.True(decoder.TryDecode(g.Json, out var e, out var v), v?.ToString());
            Assert.Equal(g.EventId, e!.EventId);
            Assert.Equal(g.EventType, e.EventType);
            Assert.Equal(g.UserId, e.UserId);
            Assert.Equal(g.Timestamp, e.Timestamp);
            Assert.Equal(Registry.Find(g.EventType)!.Newest.Version, e.SchemaVersion);
            Assert.Contains(e.Version, new EventGeneratorOptions().AppVersions);
        }
    }

    private sealed class FixedClock(DateTime utcNow) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(utcNow);
    }
}
