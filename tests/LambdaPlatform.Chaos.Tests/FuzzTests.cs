using System.Security.Cryptography;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Chaos.Scenarios;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;
using LambdaPlatform.Speed;
using Xunit.Abstractions;

namespace LambdaPlatform.Chaos.Tests;

/// <summary>Hostile input: the speed layer survives it, dead-letters every bad record with a reason and counts every good one.</summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Fuzz_DeadLettersEveryHostileRecordOnce_AndCountsEveryValidEvent()
    {
        var scenario = new FuzzScenario();
        var result = await ChaosAssert.RunCleanAsync(scenario, output);

        var run = scenario.LastRun;
        Assert.NotNull(run);
        Assert.True(run.HostileSent >= ChaosSettings.Ci().HostileMessages, $"only {run.HostileSent} hostile records were sent");
        Assert.Equal(run.HostileSent, result.Injected);
        Assert.Equal(0, run.Missing);
        Assert.Equal(0, run.Duplicates);
        Assert.Equal(0, run.NamingValidEvents);
        Assert.Equal(0, run.WithoutReason);
        Assert.Equal(0, run.ReaderProblems);
        Assert.Equal(run.HostileSent, run.DistinctSources);
        Assert.Equal(run.HostileSent, run.DeadLetters);
        Assert.True(run.Truncated > 0, "the 10 MB records should have been dead-lettered truncated");
        Assert.True(run.LargestDeadLetterValue < 1_000_000, $"a dead letter of {run.LargestDeadLetterValue} bytes is above message.max.bytes");
        Assert.False(run.SpeedExited);
        Assert.True(run.PeakRssMiB <= FuzzScenario.PeakRssBoundMiB, $"peak RSS {run.PeakRssMiB} MiB");
    }

    [Fact]
    public void FuzzMessages_AreAllRejectedByTheDecoder()
    {
        var decoder = new EventDecoder(EventSchemaRegistry.LoadDefault());
        var random = new Random(7);
        var messages = new FuzzMessages(random, new EventGenerator(new EventGeneratorOptions { Seed = 7 }));
        var accepted = new List<string>();
        for (var i = 0; i < 20_000; i++)
        {
            var m = messages.Next();
            if (m.Value is { } value && decoder.TryDecode(value, out _, out _))
            {
                accepted.Add($"{m.Kind}: {Encoding.UTF8.GetString(value)}");
            }
        }

        foreach (var m in new[] { messages.HugeCompressible(), messages.HugeCompressible(), messages.HugeCompressible(), messages.HugeRandom(), messages.HugeKey(100_000), messages.HugeHeaders(100_000) })
        {
            if (decoder.TryDecode(m.Value, out _, out var violation))
            {
                accepted.Add(m.Kind);
            }
            else
            {
                Assert.False(string.IsNullOrWhiteSpace(violation!.ToString()));
            }
        }

        Assert.Empty(accepted.Take(5));
    }

    [Fact]
    public void DeadLetter_KeepsA10MegabyteValueAsAPrefix_WithItsSizeHashAndReason()
    {
        var value = new byte[10 * 1024 * 1024];
        new Random(3).NextBytes(value);
        var key = new byte[100_000];
        var record = new ConsumeResult<byte[]?, byte[]?>
        {
            Topic = "events",
            Partition = 5,
            Offset = 42,
            Message = new Message<byte[]?, byte[]?> { Key = key, Value = value, Headers = new Headers { { "trace", "abc"u8.ToArray() }, { "huge", new byte[100_000] } } },
        };

        var dead = DeadLetterPublisher.Build(record, new Violation("size", "event is too large"), 936_000);

        Assert.Equal(936_000, dead.Value!.Length);
        Assert.Equal(value.AsSpan(0, 936_000).ToArray(), dead.Value);
        Assert.Equal(DeadLetterPublisher.MaxKeyBytes, dead.Key!.Length);
        Assert.Equal("$: event is too large (size)", Text(dead, "reason"));
        Assert.Equal("value,key", Text(dead, "truncated"));
        Assert.Equal("10485760", Text(dead, "original.value.size"));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(value)), Text(dead, "original.value.sha256"));
        Assert.Equal("100000", Text(dead, "original.key.size"));
        Assert.Equal("5", Text(dead, "source.partition"));
        Assert.Equal("42", Text(dead, "source.offset"));
        Assert.Equal("abc", Text(dead, "original.trace"));
        Assert.Equal("1", Text(dead, "original.headers.dropped"));
    }

    [Fact]
    public void DeadLetter_CutsAHugeReason_AtACharacterBoundary()
    {
        var record = new ConsumeResult<byte[]?, byte[]?> { Topic = "events", Partition = 0, Offset = 1, Message = new Message<byte[]?, byte[]?> { Value = "{}"u8.ToArray() } };
        var dead = DeadLetterPublisher.Build(record, new Violation("eventType", "unknown event type '" + new string('é', 100_000) + "'"), 936_000);

        var reason = dead.Headers.GetLastBytes("reason");
        Assert.True(reason.Length <= DeadLetterPublisher.MaxReasonBytes);
        Assert.EndsWith("...", Encoding.UTF8.GetString(reason), StringComparison.Ordinal);
        Assert.True(System.Text.Unicode.Utf8.IsValid(reason));
        Assert.Null(Text(dead, "truncated"));
        Assert.Equal("{}", Encoding.UTF8.GetString(dead.Value!));
    }

    private static string? Text(Message<byte[]?, byte[]?> message, string header) =>
        message.Headers.TryGetLastBytes(header, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
