using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// Our compiled validator is hand-written for speed, so it is checked against an independent, complete
/// JSON Schema implementation (JsonSchema.Net) on thousands of generated and mutated events: both must
/// give the same verdict for every one. The schema-version selection rule is written as JSON Schema for the
/// reference (a named <c>metadata.schemaVersion</c> pins that version; otherwise the payload must pass any
/// version), and the version the decoder reports must be the named one, else the newest one the payload passes.
/// </summary>
public sealed class ReferenceValidatorTests
{
    private static readonly DateTime Now = new(2026, 11, 28, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void TryDecode_AgreesWithJsonSchemaNet_OnMutatedEvents()
    {
        var registry = EventSchemaRegistry.LoadDefault();
        var decoder = new EventDecoder(registry, new EventDecoderOptions { Clock = new FixedClock(Now) });
        var reference = registry.EventTypes.ToDictionary(t => t.Name, t => new Reference(registry.Directory, t));
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 7 });
        var legacy = new LegacyEventGenerator(new EventGeneratorOptions { Seed = 8 });
        var random = new Random(11);
        int valid = 0, invalid = 0;
        var accepted = new Dictionary<(string Type, string? Version, bool Named), int>();

        for (var i = 0; i < 6_000; i++)
        {
            var at = Now.AddMinutes(-random.Next(10_000));
            var old = random.Next(3) == 0;
            var node = JsonNode.Parse(old ? legacy.Next(at).Json : generator.Next(at).Json)!.AsObject();
            var mutation = i % 4 == 0 ? "none" : Mutate(node, random);
            if (i % 4 == 0 && random.Next(2) == 0)
            {
                // The version of its shape, named (checkouts: v1 for the old generator's, v2 for today's).
                mutation = "named its own version";
                node["metadata"]!["schemaVersion"] = node["eventType"]!.GetValue<string>() == "user.action.checkout" && !old ? "2" : "1";
            }

            var json = node.ToJsonString();
            var ours = decoder.TryDecode(Encoding.UTF8.GetBytes(json), out var decoded, out var violation);
            using var doc = JsonDocument.Parse(json);
            var type = reference[node["eventType"]!.GetValue<string>()];
            var theirs = type.IsValid(doc.RootElement);
            Assert.True(ours == theirs, $"mutation '{mutation}' on {json}: ours={ours} ({violation}), JsonSchema.Net={theirs}");
            if (ours)
            {
                valid++;
                var (version, named) = type.ChosenVersion(doc.RootElement);
                Assert.True(version == decoded!.SchemaVersion, $"mutation '{mutation}' on {json}: ours picked v{decoded.SchemaVersion}, the rule v{version}");
                accepted[(decoded.EventType, version, named)] = accepted.GetValueOrDefault((decoded.EventType, version, named)) + 1;
            }
            else
            {
                invalid++;
            }
        }

        Assert.True(valid > 1500 && invalid > 1500, $"valid={valid} invalid={invalid}: the corpus must exercise both verdicts");
        const string Checkout = "user.action.checkout";
        foreach (var key in new[] { (Checkout, "1", false), (Checkout, "2", false), (Checkout, "1", true), (Checkout, "2", true) })
        {
            Assert.True(accepted.GetValueOrDefault(key) >= 20, $"only {accepted.GetValueOrDefault(key)} checkouts accepted as {key}: the corpus must exercise every way to pick a version");
        }
    }

    /// <summary>One event type's rule in JsonSchema.Net: the whole-event schema and each version's payload schema.</summary>
    private sealed class Reference
    {
        private static readonly EvaluationOptions Options = new() { RequireFormatValidation = true, OutputFormat = OutputFormat.Flag };
        private readonly JsonSchema _event;
        private readonly (string Version, JsonSchema Payload)[] _newestFirst;

        public Reference(string directory, EventTypeSchemas type)
        {
            var payloads = type.Versions.Select(v => (v.Version, Schema: PayloadSchema(directory, type.Name, v.Version))).ToArray();
            _newestFirst = [.. Enumerable.Reverse(payloads).Select(p => (p.Version, JsonSchema.FromText(p.Schema.ToJsonString())))];

            // The envelope with eventType pinned, and: metadata.schemaVersion names a version whose payload schema must
            // hold, or, when it is absent, the payload passes at least one version.
            var envelope = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "envelope.schema.json")))!.AsObject();
            envelope.Remove("$id");
            envelope.Remove("$schema");
            envelope["properties"]!["eventType"]!.AsObject()["const"] = type.Name;
            var branches = new JsonArray();
            foreach (var (version, schema) in payloads)
            {
                branches.Add(new JsonObject
                {
                    ["properties"] = new JsonObject
                    {
                        ["metadata"] = new JsonObject { ["required"] = new JsonArray("schemaVersion"), ["properties"] = new JsonObject { ["schemaVersion"] = new JsonObject { ["const"] = version } } },
                        ["payload"] = schema.DeepClone(),
                    },
                });
            }

            branches.Add(new JsonObject
            {
                ["properties"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["not"] = new JsonObject { ["required"] = new JsonArray("schemaVersion") } },
                    ["payload"] = new JsonObject { ["anyOf"] = new JsonArray([.. payloads.Select(p => p.Schema.DeepClone())]) },
                },
            });
            var root = new JsonObject
            {
                ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
                ["allOf"] = new JsonArray(envelope, new JsonObject { ["anyOf"] = branches }),
            };
            _event = JsonSchema.FromText(root.ToJsonString());
        }

        public bool IsValid(JsonElement e) => _event.Evaluate(e, Options).IsValid;

        /// <summary>For a valid event: the named version, else the newest version whose payload schema holds.</summary>
        public (string? Version, bool Named) ChosenVersion(JsonElement e)
        {
            if (e.GetProperty("metadata").TryGetProperty("schemaVersion", out var named))
            {
                return (named.GetString(), true);
            }

            var payload = e.GetProperty("payload");
            return (_newestFirst.FirstOrDefault(v => v.Payload.Evaluate(payload, Options).IsValid).Version, false);
        }

        private static JsonObject PayloadSchema(string directory, string eventType, string version)
        {
            var payload = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, eventType, $"v{version}.schema.json")))!.AsObject();
            payload.Remove("$id");
            payload.Remove("$schema");
            return payload;
        }
    }

    private static string Mutate(JsonObject node, Random random)
    {
        var payload = node["payload"]!.AsObject();
        var payloadKeys = payload.Select(p => p.Key).ToArray();
        var envelopeKeys = new[] { "eventId", "timestamp", "userId", "payload", "metadata" };
        switch (random.Next(20))
        {
            case 16:
                var named = new[] { "1", "2", "1", "2", "3", "01", "" }[random.Next(7)];
                node["metadata"]!["schemaVersion"] = named;
                return "metadata.schemaVersion " + named;
            case 17:
                var app = new[] { "2.5.1", "1", "2", "3.0.0-rc.1+77", new string('x', 64), new string('x', 65), "" }[random.Next(7)];
                node["metadata"]!["version"] = app;
                return "metadata.version " + app;
            case 18:
                return MutateLineItems(payload, random);
            case 19:
                payload.Remove("currency");
                payload.Remove("referrer");
                payload.Remove("filters");
                return "remove optional fields";
            case 0:
                var k0 = envelopeKeys[random.Next(envelopeKeys.Length)];
                node.Remove(k0);
                return "remove " + k0;
            case 1:
                var k1 = payloadKeys[random.Next(payloadKeys.Length)];
                payload.Remove(k1);
                return "remove payload." + k1;
            case 2:
                var k2 = payloadKeys[random.Next(payloadKeys.Length)];
                payload[k2] = payload[k2]?.GetValueKind() == JsonValueKind.String ? 42 : "42"; // null (an absent coupon or referrer) too
                return "retype payload." + k2;
            case 3:
                payload["extra"] = true;
                return "extra payload property";
            case 4:
                node["metadata"]!["extra"] = "x";
                return "extra metadata property";
            case 5:
                node["eventId"] = random.Next(2) == 0 ? "7D9F4C9E-2A55-4A6E-9A53-0C1F1A2B3C4D" : "7d9f4c9e2a554a6e9a530c1f1a2b3c4d";
                return "eventId case/format";
            case 6:
                node["timestamp"] = random.Next(2) == 0 ? "2026-11-28T10:00:00.5+01:00" : "28/11/2026 10:00";
                return "timestamp format";
            case 7:
                node["userId"] = random.Next(2) == 0 ? "" : new string('u', 128 + random.Next(2));
                return "userId length";
            case 8:
                SetNumber(payload, random, -0.01);
                return "negative number";
            case 9:
                SetNumber(payload, random, random.Next(2) == 0 ? 2.0 : 2.5);
                return "integer-ish number";
            case 10:
                if (payload.ContainsKey("currency"))
                {
                    payload["currency"] = random.Next(2) == 0 ? "XYZ" : "USD";
                }

                return "currency enum";
            case 11:
                if (payload.ContainsKey("filters") || node["eventType"]!.GetValue<string>() == "user.action.search")
                {
                    payload["filters"] = new JsonArray([.. Enumerable.Range(0, 15 + random.Next(3)).Select(i => (JsonNode)(i % 5 == 0 && random.Next(3) == 0 ? (JsonNode)7 : "f" + i))]);
                }
                else
                {
                    payload["coupon"] = random.Next(2) == 0 ? null : "SAVE10";
                }

                return "arrays / nullable";
            case 12:
                node["payload"] = new JsonArray();
                return "payload array";
            case 13:
                node["metadata"]!["source"] = random.Next(2) == 0 ? 5 : "";
                return "source type/length";
            case 14:
                var k14 = payloadKeys[random.Next(payloadKeys.Length)];
                payload[k14] = null;
                return "null payload." + k14;
            default:
                node["userId"] = "ü😀" + new string('x', 125 + random.Next(2));
                return "userId unicode length";
        }
    }

    private static string MutateLineItems(JsonObject payload, Random random)
    {
        if (payload["items"] is not JsonArray { Count: > 0 } items)
        {
            // Not a canonical checkout: an old one's item count becomes line items, or anything gets a list.
            payload["items"] = new JsonArray(new JsonObject { ["sku"] = "SKU-1", ["quantity"] = 1, ["price"] = 9.99 });
            return "items become line items";
        }

        var line = items[random.Next(items.Count)]!.AsObject();
        switch (random.Next(8))
        {
            case 0:
                line.Remove(new[] { "sku", "quantity", "price" }[random.Next(3)]);
                return "line item field removed";
            case 1:
                line["quantity"] = random.Next(2) == 0 ? 0 : 1.5;
                return "line item quantity";
            case 2:
                line["price"] = random.Next(2) == 0 ? -0.01 : "9.99";
                return "line item price";
            case 3:
                line["sku"] = random.Next(2) == 0 ? "" : new string('s', 65);
                return "line item sku";
            case 4:
                line["name"] = "Red shoes";
                return "line item extra property";
            case 5:
                payload["items"] = new JsonArray();
                return "no line items";
            case 6:
                payload["items"] = items.Count;
                return "line items become a count";
            default:
                items.Add(7);
                return "line item not an object";
        }
    }

    private static void SetNumber(JsonObject payload, Random random, double value)
    {
        var numeric = payload.Where(p => p.Value?.GetValueKind() == JsonValueKind.Number).Select(p => p.Key).ToArray();
        if (numeric.Length > 0)
        {
            payload[numeric[random.Next(numeric.Length)]] = value;
        }
    }

    private sealed class FixedClock(DateTime utcNow) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(utcNow);
    }
}
