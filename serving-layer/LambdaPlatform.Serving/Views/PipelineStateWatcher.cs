using System.Collections.Concurrent;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Serving.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Serving.Views;

/// <summary>Settings of how an API instance follows the pipeline state in ClickHouse.</summary>
public sealed record PipelineStateOptions
{
    /// <summary>
    /// How often the change markers and the speed layer's progress are read. Default 1 s; 50 ms to 60 s. Twice this is the
    /// staleness bound of cached answers: every answer of every API instance includes each change whose marker was written
    /// more than two intervals before (see <see cref="PipelineStateWatcher"/>).
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The speed layer's consumer group whose progress gives <c>speedLagSeconds</c> and the Kafka lag. Default <c>speed</c>.</summary>
    public string SpeedGroup { get; init; } = "speed";

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    /// <returns>This instance.</returns>
    public PipelineStateOptions Validate()
    {
        if (PollInterval < TimeSpan.FromMilliseconds(50) || PollInterval > TimeSpan.FromSeconds(60))
        {
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "PipelineStateOptions.PollInterval must be between 50 ms and 60 s");
        }

        if (string.IsNullOrWhiteSpace(SpeedGroup))
        {
            throw new ArgumentException("PipelineStateOptions.SpeedGroup must not be empty", nameof(SpeedGroup));
        }

        return this;
    }
}

/// <summary>
/// What this API instance knows of the pipeline, read from the serving ClickHouse every
/// <see cref="PipelineStateOptions.PollInterval"/>: the views' change markers (flushes, batch swaps, W moves, from any
/// process) and the speed layer's progress per partition. Nothing comes from this process's memory of other layers, so
/// N instances behind a load balancer answer alike.
/// </summary>
/// <remarks>
/// <para>Cache rule (<see cref="ChangedSince"/>): an answer whose query started at <c>t</c> may be served only while (1) no
/// marker overlapping its range was read by a poll that ended at or after <c>t</c>, and (2) the last successful poll
/// started less than two intervals ago. Staleness bound: a change whose marker was written at <c>m</c> is in every answer
/// served after <c>m</c> + 2 × <see cref="PipelineStateOptions.PollInterval"/>. Proof: by (2) such an answer comes from the
/// cache only if a completed poll started after <c>m</c>; that poll read the marker (written after the change was durable),
/// so by (1) the answer's query started after that poll ended, hence after <c>m</c>, and saw the change. A slow or failing
/// poll turns the cache off instead of stretching the bound.</para>
/// <para>Markers are followed by the server's clock (their <c>insertedAt</c>), re-reading a 5-second overlap and skipping
/// ids already seen, so writers' clocks do not matter. Markers written in this same process (<see cref="LocalViewChanges"/>)
/// count at once, as an optimisation on top. Thread-safe.</para>
/// </remarks>
public sealed class PipelineStateWatcher : BackgroundService
{
    private static readonly TimeSpan Overlap = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ErrorLogInterval = TimeSpan.FromMinutes(1);

    private readonly ServingStore _store;
    private readonly PipelineStateOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, ViewChanges> _changes = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, DateTime> _seen = [];
    private readonly SemaphoreSlim _polling = new(1, 1);
    private DateTime? _cursor;
    private long _lastPollStarted = long.MinValue;
    private long _lastErrorLogged = long.MinValue;
    private volatile SpeedFreshness _speed = SpeedFreshness.Unknown;
    private readonly IDisposable _local;

    /// <summary>Creates the watcher; it polls once started as a hosted service (or when <see cref="PollAsync"/> is called).</summary>
    public PipelineStateWatcher(IClickHouse clickHouse, PipelineStateOptions options, TimeProvider clock, ILogger<PipelineStateWatcher> logger)
    {
        _store = new ServingStore(clickHouse);
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));

        // Markers written in this process count at once: read-your-writes for `lambda up` and POST /v1/batch/run.
        _local = LocalViewChanges.Subscribe(changes =>
        {
            var now = _clock.GetTimestamp();
            foreach (var change in changes)
            {
                _changes.GetOrAdd(change.View, _ => new ViewChanges()).Add(now, change.FromBucket, change.ToBucket);
            }
        });
    }

    /// <summary>The settings.</summary>
    public PipelineStateOptions Options => _options;

    /// <summary>The speed layer's progress as of the last successful poll.</summary>
    public SpeedFreshness Speed => _speed;

    /// <summary>True while the last successful poll started less than two poll intervals ago (the cache may be used).</summary>
    public bool IsCurrent
    {
        get
        {
            var last = Interlocked.Read(ref _lastPollStarted);
            return last != long.MinValue && _clock.GetElapsedTime(last) < 2 * _options.PollInterval;
        }
    }

    /// <summary>Seconds between now and the newest event time the speed layer flushed (any partition), or null when none is recorded.</summary>
    public double? SpeedLagSeconds =>
        _speed.NewestEventTime is { } newest ? Math.Max(0, (_clock.GetUtcNow().UtcDateTime - newest).TotalSeconds) : null;

    /// <summary>
    /// True when an answer of buckets in [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="view"/> whose query
    /// started at <paramref name="since"/> (a <see cref="TimeProvider.GetTimestamp"/> of this watcher's clock) may be stale:
    /// a poll that ended after it started read a marker overlapping it, or the pipeline state is not current.
    /// </summary>
    public bool ChangedSince(string view, long since, DateTime from, DateTime to) =>
        !IsCurrent || (_changes.TryGetValue(view, out var changes) && changes.Overlaps(since, from, to));

    /// <summary>Reads new change markers and the speed progress once. Called every poll interval by the hosted service.</summary>
    /// <exception cref="ClickHouseException">ClickHouse failed; the state stays as it was (and stops being current).</exception>
    public async Task PollAsync(CancellationToken cancellationToken = default)
    {
        await _polling.WaitAsync(cancellationToken);
        try
        {
            // Before anything is read: every marker written before this instant is in what this poll reads.
            var started = _clock.GetTimestamp();
            var speedTask = _store.ReadSpeedProgressAsync(_options.SpeedGroup, cancellationToken);
            var markersTask = ReadMarkersAsync(cancellationToken);
            await Task.WhenAll(speedTask, markersTask);
            var (serverNow, markers) = await markersTask;
            var speed = await speedTask;

            // After everything was read: a query that starts later sees every change whose marker this poll read.
            var ended = _clock.GetTimestamp();
            foreach (var marker in markers)
            {
                if (_seen.TryAdd(marker.ChangeId, marker.InsertedAt))
                {
                    _changes.GetOrAdd(marker.Change.View, _ => new ViewChanges()).Add(ended, marker.Change.FromBucket, marker.Change.ToBucket);
                }
            }

            _cursor = serverNow - Overlap;
            foreach (var old in _seen.Where(s => s.Value < _cursor).Select(s => s.Key).ToList())
            {
                _seen.Remove(old);
            }

            _speed = new SpeedFreshness(speed, speed.Select(p => p.NewestEventTime).Max());
            Interlocked.Exchange(ref _lastPollStarted, started);
        }
        finally
        {
            _polling.Release();
        }
    }

    private async Task<(DateTime ServerNow, IReadOnlyList<ViewChangeMarker> Markers)> ReadMarkersAsync(CancellationToken cancellationToken)
    {
        var serverNow = await _store.ReadServerTimeAsync(cancellationToken);
        return (serverNow, await _store.ReadViewChangesAsync(_cursor ?? serverNow - Overlap, cancellationToken));
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.PollInterval, _clock);
        do
        {
            try
            {
                await PollAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Not current any more: answers are computed afresh, without the cache, until a poll succeeds.
                if (_lastErrorLogged == long.MinValue || _clock.GetElapsedTime(_lastErrorLogged) > ErrorLogInterval)
                {
                    _lastErrorLogged = _clock.GetTimestamp();
                    _logger.LogWarning("reading the pipeline state failed (API cache off until it works again): {Error}", e.Message.Split('\n')[0]);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _local.Dispose();
        _polling.Dispose();
        base.Dispose();
    }

    private sealed class ViewChanges
    {
        private const int Keep = 256;
        private readonly Queue<(long At, DateTime Min, DateTime Max)> _recent = new();
        private readonly Lock _lock = new();

        public void Add(long at, DateTime min, DateTime max)
        {
            lock (_lock)
            {
                _recent.Enqueue((at, min, max));
                while (_recent.Count > Keep)
                {
                    _recent.Dequeue();
                }
            }
        }

        public bool Overlaps(long since, DateTime from, DateTime to)
        {
            lock (_lock)
            {
                if (_recent.Count == Keep && _recent.Peek().At >= since)
                {
                    return true; // history no longer reaches back far enough to prove nothing changed
                }

                foreach (var (at, min, max) in _recent)
                {
                    if (at >= since && min < to && max >= from)
                    {
                        return true;
                    }
                }

                return false;
            }
        }
    }
}

/// <summary>The speed layer's progress as an API instance last read it.</summary>
/// <param name="Partitions">Per Kafka partition: offsets, Kafka lag at the flush, newest event time, flush time, instance.</param>
/// <param name="NewestEventTime">The newest event time flushed over all partitions, or null when none.</param>
public sealed record SpeedFreshness(IReadOnlyList<SpeedPartitionProgress> Partitions, DateTime? NewestEventTime)
{
    /// <summary>Nothing read yet.</summary>
    public static SpeedFreshness Unknown { get; } = new([], null);
}
