using System.Diagnostics.Metrics;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Speed.Tests;

/// <summary><c>lambda.speed.lag</c>: per partition, the clock's now minus the newest event time flushed (never negative).</summary>
public sealed class SpeedMetricsTests
{
    // Partition numbers no other test uses: every SpeedMetrics in the process has a meter of the same name.
    private const int P0 = 7001;
    private const int P1 = 7002;

    private static readonly DateTime Noon = new(2026, 10, 1, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void SpeedLag_IsNowMinusTheNewestEventTimeFlushed_PerPartition()
    {
        var clock = new MovableClock(Noon);
        using var metrics = new SpeedMetrics(clock: clock);
        metrics.Flushed(new Dictionary<int, DateTime> { [P0] = Noon.AddSeconds(-5), [P1] = Noon.AddMinutes(-10) });
        metrics.Flushed(new Dictionary<int, DateTime> { [P0] = Noon.AddMinutes(-20) }); // an older event later does not make the partition staler
        Assert.Equal(new Dictionary<int, double> { [P0] = 5, [P1] = 600 }, Read());

        clock.Now = Noon.AddSeconds(60); // nothing flushed since: the lag grows with the clock
        metrics.Flushed(new Dictionary<int, DateTime> { [P1] = Noon.AddMinutes(2) }); // event time ahead of the clock: 0, not negative
        Assert.Equal(new Dictionary<int, double> { [P0] = 65, [P1] = 0 }, Read());
    }

    private static Dictionary<int, double> Read()
    {
        var values = new Dictionary<int, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "lambda.speed.lag" && instrument.Meter.Name == SpeedMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, state) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "partition" && tag.Value is int partition and (P0 or P1))
                {
                    values[partition] = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    private sealed class MovableClock(DateTime now) : TimeProvider
    {
        public DateTime Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => new(Now);
    }
}
