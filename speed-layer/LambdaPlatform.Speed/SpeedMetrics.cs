using System.Diagnostics.Metrics;

namespace LambdaPlatform.Speed;

/// <summary>
/// The speed layer's instruments, on the meter <see cref="MeterName"/> (exported by the host through
/// OpenTelemetry, e.g. as Prometheus metrics). Thread-safe.
/// </summary>
public sealed class SpeedMetrics : IDisposable
{
    /// <summary>Name of the meter every speed-layer instrument is on.</summary>
    public const string MeterName = "LambdaPlatform.Speed";

    private readonly Meter _meter;

    private readonly TimeProvider _clock;

    /// <summary>Creates the instruments (through <paramref name="meterFactory"/> when given, so hosts can collect them).</summary>
    /// <param name="meterFactory">Creates the meter; null for a private one.</param>
    /// <param name="clock">The clock the speed lag is measured against; default the system clock.</param>
    public SpeedMetrics(IMeterFactory? meterFactory = null, TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        EventsIn = _meter.CreateCounter<long>("lambda.speed.events_in", "{event}", "Records read from the events topic.");
        Invalid = _meter.CreateCounter<long>("lambda.speed.invalid", "{event}", "Records rejected and sent to the dead-letter topic, by rule.");
        Duplicates = _meter.CreateCounter<long>("lambda.speed.duplicates", "{event}", "Events dropped as duplicates (same eventId within the dedupe window).");
        Late = _meter.CreateCounter<long>("lambda.speed.late", "{event}", "Events too late for real time (left to the batch layer), by view.");
        Counted = _meter.CreateCounter<long>("lambda.speed.counted", "{event}", "Events counted into a real-time view, by view.");
        Skipped = _meter.CreateCounter<long>("lambda.speed.records_skipped", "{record}", "Records the broker no longer had when the speed layer reached them (an offset reset past its position, by partition): never counted in real time.");
        Flushes = _meter.CreateCounter<long>("lambda.speed.flushes", "{flush}", "Durable flushes followed by an offset commit.");
        FlushFailures = _meter.CreateCounter<long>("lambda.speed.flush_failures", "{flush}", "Flushes that failed and will be retried.");
        FlushDuration = _meter.CreateHistogram<double>("lambda.speed.flush.duration", "s", "Time to write one batch to every sink.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10] });
        Freshness = _meter.CreateHistogram<double>("lambda.speed.freshness", "s", "Event time to visible in ClickHouse, per event.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600] });
        _meter.CreateObservableGauge("lambda.speed.consumer_lag", ObserveLag, "{record}", "Records behind the partition's high watermark after the last flush.");
        _meter.CreateObservableGauge("lambda.speed.lag", ObserveSpeedLag, "s",
            "Speed lag per partition: now minus the newest event time this instance has flushed from it (grows while nothing is flushed, also on a quiet partition).");
        _meter.CreateObservableGauge("lambda.speed.buffered_events", () => Interlocked.Read(ref _buffered), "{event}",
            "Valid events read and not yet flushed (read again from the last commit if the process dies).");
        _meter.CreateObservableGauge("lambda.speed.assigned_partitions", ObserveAssigned, "{partition}",
            "Partitions of the events topic assigned to this instance: one sample of 1 per partition (tag partition).");
    }

    private long _buffered;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, byte> _assigned = new();

    /// <summary>Sets the valid events read and not yet flushed (the consumer's work in flight).</summary>
    public void SetBuffered(long events) => Interlocked.Exchange(ref _buffered, events);

    /// <summary>Partitions were assigned to this instance (incrementally or all at once).</summary>
    public void Assigned(IEnumerable<int> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        foreach (var p in partitions)
        {
            _assigned[p] = 0;
        }
    }

    /// <summary>Partitions were revoked from or lost by this instance.</summary>
    public void Unassigned(IEnumerable<int> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        foreach (var p in partitions)
        {
            _assigned.TryRemove(p, out _);
        }
    }

    private IEnumerable<Measurement<long>> ObserveAssigned() =>
        _assigned.Keys.Order().Select(p => new Measurement<long>(1, new KeyValuePair<string, object?>("partition", p)));

    /// <summary>Records read from Kafka.</summary>
    public Counter<long> EventsIn { get; }

    /// <summary>Records rejected (tag <c>rule</c>).</summary>
    public Counter<long> Invalid { get; }

    /// <summary>Duplicates removed.</summary>
    public Counter<long> Duplicates { get; }

    /// <summary>Late events (tag <c>view</c>).</summary>
    public Counter<long> Late { get; }

    /// <summary>Events counted into a view (tag <c>view</c>).</summary>
    public Counter<long> Counted { get; }

    /// <summary>Records never read: the broker had dropped them (retention) before the speed layer reached them.</summary>
    public Counter<long> Skipped { get; }

    /// <summary>Successful flushes.</summary>
    public Counter<long> Flushes { get; }

    /// <summary>Failed flush attempts.</summary>
    public Counter<long> FlushFailures { get; }

    /// <summary>Flush latency in seconds.</summary>
    public Histogram<double> FlushDuration { get; }

    /// <summary>End-to-end freshness in seconds.</summary>
    public Histogram<double> Freshness { get; }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, long> _lag = new();

    /// <summary>Records the consumer lag of a partition (records behind its high watermark).</summary>
    public void SetLag(int partition, long records) => _lag[partition] = records;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, DateTime> _newestFlushed = new();

    /// <summary>Records a durable flush: per partition, the newest event time flushed so far (for <c>lambda.speed.lag</c>).</summary>
    public void Flushed(IReadOnlyDictionary<int, DateTime> newestByPartition)
    {
        ArgumentNullException.ThrowIfNull(newestByPartition);
        foreach (var (partition, newest) in newestByPartition)
        {
            _newestFlushed.AddOrUpdate(partition, newest, (_, seen) => newest > seen ? newest : seen);
        }
    }

    private IEnumerable<Measurement<double>> ObserveSpeedLag()
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        return _newestFlushed.Select(kv => new Measurement<double>(Math.Max(0, (now - kv.Value).TotalSeconds), new KeyValuePair<string, object?>("partition", kv.Key)));
    }

    private IEnumerable<Measurement<long>> ObserveLag() =>
        _lag.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("partition", kv.Key)));

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
