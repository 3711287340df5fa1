using BenchmarkDotNet.Attributes;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The archiver's encoder alone on one core: append pre-decoded events to the column buffer and write one Parquet file
/// of <see cref="Events"/> rows (the default file size) to memory; no Kafka, no decoding, no disk, no fsync or rename
/// (the whole archiver is <c>archive.events_per_s</c>, <see cref="ArchiveEndToEnd"/>). <see cref="WriteZstd"/> is the
/// shipped codec (<c>archive.encode.events_per_s</c>); the baseline is the same path with Snappy, Parquet.Net's fastest
/// codec (<c>archive.encode.snappy.events_per_s</c>). <see cref="MeasureBytesPerEventAsync"/> gives <c>archive.bytes_per_event</c>.
/// </summary>
[MemoryDiagnoser]
public class ArchiveBenchmarks
{
    /// <summary>Events per benchmark invocation (one file).</summary>
    public const int Events = 200_000;

    private byte[][] _json = [];
    private DecodedEvent[] _events = [];
    private MasterEventBuffer _buffer = null!;
    private MemoryStream _output = null!;

    /// <summary>Generates and decodes the corpus once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        (_json, _events) = Corpus();
        _buffer = new MasterEventBuffer(Events);
        _output = new MemoryStream(32 << 20);
    }

    /// <summary>Builds the columns and writes them with Snappy.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Events)]
    public Task<long> WriteSnappy() => WriteAsync(MasterCompression.Snappy);

    /// <summary>Builds the columns and writes them with Zstd (the archiver's default).</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public Task<long> WriteZstd() => WriteAsync(MasterCompression.Zstd);

    /// <summary>File bytes per event for <paramref name="compression"/>, over the benchmark's corpus.</summary>
    public static async Task<double> MeasureBytesPerEventAsync(MasterCompression compression)
    {
        var (_, events) = Corpus();
        var buffer = new MasterEventBuffer(Events);
        for (var i = 0; i < events.Length; i++)
        {
            buffer.Add(events[i], 0, i);
        }

        using var output = new MemoryStream();
        await MasterParquet.WriteAsync(buffer, output, compression);
        return (double)output.Length / events.Length;
    }

    private async Task<long> WriteAsync(MasterCompression compression)
    {
        _buffer.Clear();
        var events = _events;
        for (var i = 0; i < events.Length; i++)
        {
            _buffer.Add(events[i], 0, i);
        }

        _output.SetLength(0);
        await MasterParquet.WriteAsync(_buffer, _output, compression);
        GC.KeepAlive(_json); // the decoded payloads point into these buffers
        return _output.Length;
    }

    private static (byte[][] Json, DecodedEvent[] Events) Corpus()
    {
        var generator = new EventGenerator();
        var decoder = new EventDecoder(EventSchemaRegistry.LoadDefault());
        var start = DateTime.UtcNow.AddHours(-1);
        var json = new byte[Events][];
        var events = new DecodedEvent[Events];
        for (var i = 0; i < Events; i++)
        {
            json[i] = generator.Next(start.AddMilliseconds(i * 10)).Json;
            events[i] = decoder.TryDecode(json[i], out var decoded, out var violation)
                ? decoded!
                : throw new InvalidOperationException("generated event is invalid: " + violation);
        }

        return (json, events);
    }
}
