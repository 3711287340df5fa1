using System.Diagnostics.Metrics;

namespace LambdaPlatform.Batch.Recompute;

/// <summary>The batch recompute's instruments, on the meter <see cref="MeterName"/>. Thread-safe.</summary>
public sealed class BatchMetrics : IDisposable
{
    /// <summary>Name of the meter every batch instrument is on.</summary>
    public const string MeterName = "LambdaPlatform.Batch.Recompute";

    /// <summary>Reason tag: the day is still open for late events.</summary>
    public const string DayOpen = "day_open";

    /// <summary>Reason tag: an earlier day is not below W yet.</summary>
    public const string EarlierDay = "earlier_day";

    /// <summary>Reason tag: the master dataset does not hold everything the real-time side counted for the day.</summary>
    public const string ArchiveBehind = "archive_behind";

    private readonly Meter _meter;

    /// <summary>Creates the instruments (through <paramref name="meterFactory"/> when given, so hosts can collect them).</summary>
    public BatchMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Days = _meter.CreateCounter<long>("lambda.batch.days", "{day}", "View-days recomputed, by view.");
        WatermarkHeld = _meter.CreateCounter<long>("lambda.batch.watermark.held", "{day}",
            "View-days recomputed over which W could not move, by view and reason (day_open, earlier_day, archive_behind).");
    }

    /// <summary>View-days recomputed (tag <c>view</c>).</summary>
    public Counter<long> Days { get; }

    /// <summary>View-days over which W did not move (tags <c>view</c>, <c>reason</c>).</summary>
    public Counter<long> WatermarkHeld { get; }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
