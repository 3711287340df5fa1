using System.Diagnostics.Metrics;

namespace LambdaPlatform.Batch.Archive;

/// <summary>
/// The archiver's instruments, on the meter <see cref="MeterName"/> (exported by the host through OpenTelemetry).
/// Thread-safe.
/// </summary>
public sealed class ArchiverMetrics : IDisposable
{
    /// <summary>Name of the meter every archiver instrument is on.</summary>
    public const string MeterName = "LambdaPlatform.Batch.Archive";

    private readonly Meter _meter;

    /// <summary>Creates the instruments (through <paramref name="meterFactory"/> when given, so hosts can collect them).</summary>
    public ArchiverMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        EventsIn = _meter.CreateCounter<long>("lambda.archive.events_in", "{event}", "Records read from the events topic.");
        Invalid = _meter.CreateCounter<long>("lambda.archive.invalid", "{event}", "Records skipped as invalid (the speed layer dead-letters them), by rule.");
        Archived = _meter.CreateCounter<long>("lambda.archive.events_archived", "{event}", "Valid events written to published files.");
        Files = _meter.CreateCounter<long>("lambda.archive.files", "{file}", "Files published into the master dataset.");
        Bytes = _meter.CreateCounter<long>("lambda.archive.bytes", "By", "Bytes of published files.");
        Skipped = _meter.CreateCounter<long>("lambda.archive.records_skipped", "{record}", "Records the broker no longer had when the archiver reached them (an offset reset past its position, by partition): missing from the master dataset.");
        PublishFailures = _meter.CreateCounter<long>("lambda.archive.publish_failures", "{attempt}", "Publication attempts that failed (disk errors) and are retried.");
        PublishDuration = _meter.CreateHistogram<double>("lambda.archive.publish.duration", "s", "Time to write, fsync and rename one partition's files.");
        _meter.CreateObservableGauge("lambda.archive.buffered_events", () => Interlocked.Read(ref _buffered), "{event}",
            "Valid events read and not yet in published files (read again from the last commit if the process dies).");
        _meter.CreateObservableGauge("lambda.archive.assigned_partitions", ObserveAssigned, "{partition}",
            "Partitions of the events topic assigned to this instance: one sample of 1 per partition (tag partition).");
    }

    private long _buffered;
    private volatile int[] _assigned = [];

    /// <summary>Sets the valid events buffered and not yet published (the archiver's work in flight).</summary>
    public void SetBuffered(long events) => Interlocked.Exchange(ref _buffered, events);

    /// <summary>Sets the partitions currently assigned to this instance.</summary>
    public void SetAssigned(IEnumerable<int> partitions) => _assigned = [.. partitions.Order()];

    private IEnumerable<Measurement<long>> ObserveAssigned() =>
        _assigned.Select(p => new Measurement<long>(1, new KeyValuePair<string, object?>("partition", p)));

    /// <summary>Records read from Kafka.</summary>
    public Counter<long> EventsIn { get; }

    /// <summary>Invalid records skipped (tag <c>rule</c>).</summary>
    public Counter<long> Invalid { get; }

    /// <summary>Valid events archived.</summary>
    public Counter<long> Archived { get; }

    /// <summary>Files published.</summary>
    public Counter<long> Files { get; }

    /// <summary>Bytes published.</summary>
    public Counter<long> Bytes { get; }

    /// <summary>Records never read: the broker had dropped them (retention) before the archiver reached them.</summary>
    public Counter<long> Skipped { get; }

    /// <summary>Failed publication attempts.</summary>
    public Counter<long> PublishFailures { get; }

    /// <summary>Publication latency in seconds.</summary>
    public Histogram<double> PublishDuration { get; }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
