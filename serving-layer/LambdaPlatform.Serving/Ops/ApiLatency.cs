using System.Diagnostics.Metrics;
using LambdaPlatform.Schemas.Sketches;

namespace LambdaPlatform.Serving.Ops;

/// <summary>The API's latency percentiles over a recent window, as <see cref="ApiLatency.Read"/> returns them.</summary>
/// <param name="Window">The window they cover.</param>
/// <param name="Requests">Requests in the window.</param>
/// <param name="P50">Median duration, or null without requests.</param>
/// <param name="P95">95th percentile.</param>
/// <param name="P99">99th percentile.</param>
/// <param name="P999">99.9th percentile.</param>
public sealed record ApiLatencySnapshot(TimeSpan Window, long Requests, TimeSpan? P50, TimeSpan? P95, TimeSpan? P99, TimeSpan? P999);

/// <summary>
/// The latency of this instance's API requests (routes under <c>/v1/</c>), read from the same measurements that
/// <c>/metrics</c> exports (ASP.NET Core's <c>http.server.request.duration</c>, of this host only), kept in DDSketches (1%
/// relative accuracy) per 10-second slot for the last <see cref="Window"/>. Percentiles are of this instance: behind a load
/// balancer each instance reports its own (the Prometheus recording rules give the fleet's). Thread-safe.
/// </summary>
public sealed class ApiLatency : IDisposable
{
    /// <summary>The window percentiles are computed over: 5 minutes.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan Slot = TimeSpan.FromSeconds(10);
    private readonly MeterListener _listener = new();
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new();
    private readonly (long Slot, DDSketch Sketch)[] _slots;

    /// <summary>Starts listening to the request durations of the host whose meters <paramref name="meterFactory"/> creates.</summary>
    public ApiLatency(IMeterFactory meterFactory, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _slots = new (long, DDSketch)[(int)(Window / Slot) + 1];
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i] = (long.MinValue, new DDSketch());
        }

        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Microsoft.AspNetCore.Hosting" && instrument.Name == "http.server.request.duration" && ReferenceEquals(instrument.Meter.Scope, meterFactory))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((_, seconds, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "http.route")
                {
                    if (tag.Value is string route && route.StartsWith("/v1/", StringComparison.Ordinal))
                    {
                        Record(TimeSpan.FromSeconds(seconds));
                    }

                    return;
                }
            }
        });
        _listener.Start();
    }

    /// <summary>Records one request's duration (also for tests).</summary>
    public void Record(TimeSpan duration)
    {
        var slot = CurrentSlot();
        lock (_lock)
        {
            ref var entry = ref _slots[(int)(slot % _slots.Length)];
            if (entry.Slot != slot)
            {
                entry = (slot, new DDSketch());
            }

            entry.Sketch.Add(Math.Max(duration.TotalSeconds, DDSketch.MinIndexable));
        }
    }

    /// <summary>The percentiles of the requests of the last <see cref="Window"/>.</summary>
    public ApiLatencySnapshot Read()
    {
        var now = CurrentSlot();
        var merged = new DDSketch();
        lock (_lock)
        {
            foreach (var (slot, sketch) in _slots)
            {
                if (slot <= now && now - slot < _slots.Length - 1)
                {
                    merged.Merge(sketch);
                }
            }
        }

        TimeSpan? At(double q) => merged.Quantile(q) is { } s ? TimeSpan.FromSeconds(s) : null;
        return new ApiLatencySnapshot(Window, (long)merged.Count, At(0.5), At(0.95), At(0.99), At(0.999));
    }

    private long CurrentSlot() => _clock.GetUtcNow().ToUnixTimeMilliseconds() / (long)Slot.TotalMilliseconds;

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
