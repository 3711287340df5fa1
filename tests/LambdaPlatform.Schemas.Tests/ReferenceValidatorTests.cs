using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// Our compiled validator is hand-written for speed, so it is checked against an independent, complete
/// JSON Schema implementation (JsonSchema.Net) on thousands of generated and mutated events: both must
/// give the same verdict for every one.
/// </summary>
public sealed class ReferenceValidatorTests
{
    private static readonly DateTime Now = new(2026, 11, 28, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void TryDecode_AgreesWithJsonSchemaNet_OnMutatedEvents()
    {
        var registry = EventSchemaRegistry.LoadDefault();
        var decoder = new EventDecoder(registry, new EventDecoderOptions { Clock = new FixedClock(Now) });
        var reference = registry.EventTypes.ToDictionary(t => t.Name, t => ReferenceSchema(registry.Directory, t.Name));
        var options = new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.Flag };
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 7 });
        var random = new Random(11);
        int valid = 0, invalid = 0;

        for (var i = 0; i < 4_000; i++)
        {
            var node = JsonNode.Parse(generator.Next(Now.AddMinutes(-random.Next(10_000))).Json)!.AsObject();
            var mutation = i % 4 == 0 ? "none" : Mutate(node, random);
            var json = node.ToJsonString();
            var ours = decoder.TryDecode(Encoding.UTF8.GetBytes(json), out _, out var violation);
            using var doc = JsonDocument.Parse(json);
            var theirs = reference[node["eventType"]!.GetValue<string>()].Evaluate(doc.RootElement, options).IsValid;
            Assert.True(ours == theirs, $"mutation '{mutation}' on {json}: ours={ours} ({violation}), JsonSchema.Net={theirs}");
            if (ours)
            {
                valid++;
            }
            else
            {
                invalid++;
            }
        }

        Assert.True(valid > 1000 && invalid > 1000, $"valid={valid} invalid={invalid}: the corpus must exercise both verdicts");
    }

    private static JsonSchema ReferenceSchema(string directory, string eventType)
    {
        // The envelope with its payload replaced by the type's schema, and type and version pinned.
        var envelope = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "envelope.schema.json")))!.AsObject();
        var payload = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, eventType, "v1.schema.json")))!.AsObject();
        envelope.Remove("$id");
        payload.Remove("$id");
        payload.Remove("$schema");
        var props = envelope["properties"]!.AsObject();
        props["payload"] = payload;
        props["eventType"]!.AsObject()["const"] = eventType;
        props["metadata"]!["properties"]!["version"]!.AsObject()["const"] = "1";
        return JsonSchema.FromText(envelope.ToJsonString());
    }

    private static string Mutate(JsonObject node, Random random)
    {
        var payload = node["payload"]!.AsObject();
        var payloadKeys = payload.Select(p => p.Key).ToArray();
        var envelopeKeys = new[] { "eventId", "timestamp", "userId", "payload", "metadata" };
        switch (random.Next(16))
        {
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
                payload[k2] = payload[k2]!.GetValueKind() == JsonValueKind.String ? 42 : "42";
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
