using BenchmarkDotNet.Attributes;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed;
using LambdaPlatform.Speed.Views;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The speed layer's CPU path on one core: decode + validate + dedupe + aggregate into both shipped views,
/// in flush-sized batches (figure <c>speed.cpu.events_per_s</c>, compared with <c>parse.events_per_s</c>).
/// </summary>
[MemoryDiagnoser]
public class SpeedBenchmarks
{
    /// <summary>Events per invocation (the same corpus as <see cref="DecodeBenchmarks"/>).</summary>
    public const int Events = DecodeBenchmarks.Events;

    private const int BatchSize = 20_000;

    private byte[][] _events = [];
    private EventSchemaRegistry _schemas = null!;
    private IReadOnlyList<ViewDefinition> _views = [];

    /// <summary>Generates the corpus once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _events = DecodeBenchmarks.Corpus();
        _schemas = EventSchemaRegistry.LoadDefault();
        _views = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), _schemas);
    }

    /// <summary>Decode, validate, dedupe and aggregate every event.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public long DecodeDedupeAggregate()
    {
        var decoder = new EventDecoder(_schemas);
        var aggregation = new RealtimeAggregation(_views, _schemas);
        var batch = new List<ConsumedEvent>(BatchSize);
        long rows = 0;
        for (var i = 0; i < _events.Length; i++)
        {
            if (decoder.TryDecode(_events[i], out var e, out _))
            {
                batch.Add(new ConsumedEvent(e!, i & 3, i));
            }

            if (batch.Count == BatchSize || i == _events.Length - 1)
            {
                var result = aggregation.Aggregate(batch);
                aggregation.Commit(result);
                rows += result.Rows.Sum(r => r.Count);
                batch.Clear();
            }
        }

        return rows;
    }
}
