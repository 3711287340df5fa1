using System.Text.Json;
using BenchmarkDotNet.Attributes;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// Decode + validate of seed-shaped events on one core, against the raw limit: a bare
/// <see cref="Utf8JsonReader"/> pass over the same bytes (the baseline).
/// </summary>
[MemoryDiagnoser]
public class DecodeBenchmarks
{
    /// <summary>Events per benchmark invocation.</summary>
    public const int Events = 100_000;

    private byte[][] _events = [];
    private EventDecoder _decoder = null!;

    /// <summary>Generates the corpus once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _events = Corpus();
        _decoder = new EventDecoder(EventSchemaRegistry.LoadDefault());
    }

    /// <summary>The benchmark corpus: <see cref="Events"/> generated seed-shaped events over the last hour.</summary>
    public static byte[][] Corpus()
    {
        var generator = new EventGenerator();
        var start = DateTime.UtcNow.AddHours(-1);
        return [.. Enumerable.Range(0, Events).Select(i => generator.Next(start.AddMilliseconds(i * 10)).Json)];
    }

    /// <summary>Tokenizes every event with Utf8JsonReader and nothing else.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Events)]
    public int Parse()
    {
        var tokens = 0;
        foreach (var e in _events)
        {
            var reader = new Utf8JsonReader(e);
            while (reader.Read())
            {
                tokens++;
            }
        }

        return tokens;
    }

    /// <summary>Decodes and validates every event against the shipped schemas.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public int DecodeAndValidate()
    {
        var valid = 0;
        foreach (var e in _events)
        {
            if (_decoder.TryDecode(e, out _, out _))
            {
                valid++;
            }
        }

        return valid == Events ? valid : throw new InvalidOperationException($"only {valid} of {Events} events were valid");
    }
}
