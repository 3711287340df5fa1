using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving.Store;

namespace LambdaPlatform.Speed.Views;

/// <summary>
/// Writes every view's real-time deltas to <c>&lt;view&gt;_rt</c>. Idempotent in two ways: a retried batch
/// produces the same rows with the same (partition, first offset) key, which the ReplacingMergeTree
/// collapses; and after a restart, records at or below the highest offset a view's table already holds for
/// a partition are not counted again (the table, not the Kafka commit, says what is durable). Every event whose
/// bucket is at or above the view's batch watermark W is counted, whatever its order; one below W is late and
/// not written (it reaches the master dataset and the batch recomputes its day). W is re-read every 5 s. After the rows of
/// a flush are written, each view it touched gets a change marker (<see cref="ServingStore.RecordViewChangesAsync"/>) with
/// the bucket range, in the same flush: API instances drop cached answers of that range when they read it.
/// </summary>
public sealed class RealtimeViewsSink : IEventSink
{
    private static readonly TimeSpan WatermarkRefresh = TimeSpan.FromSeconds(5);

    private readonly IClickHouse _clickHouse;
    private readonly ServingStore _store;
    private readonly RealtimeAggregation _aggregation;
    private readonly ViewSql[] _sql;
    private readonly ClickHouseColumn[][] _columns;
    private readonly SpeedMetrics? _metrics;
    private readonly TimeProvider _clock;
    private readonly Dictionary<(string View, int Partition), long> _durableThrough = [];
    private readonly Dictionary<int, long> _nextExpected = [];
    private Dictionary<string, DateTime> _watermarks = new(StringComparer.Ordinal);
    private long _watermarksReadAt = long.MinValue;

    /// <summary>Creates the sink for <paramref name="views"/>.</summary>
    /// <param name="clickHouse">Where the real-time tables live.</param>
    /// <param name="views">The views.</param>
    /// <param name="schemas">Event schemas.</param>
    /// <param name="metrics">Instruments to record into, if any.</param>
    /// <param name="clock">Clock for the watermark refresh; default system.</param>
    /// <param name="dedupeWindow">eventIds remembered for duplicate removal.</param>
    public RealtimeViewsSink(IClickHouse clickHouse, IReadOnlyList<ViewDefinition> views, EventSchemaRegistry schemas, SpeedMetrics? metrics = null, TimeProvider? clock = null,
        int dedupeWindow = 1_000_000)
    {
        _clickHouse = clickHouse;
        _store = new ServingStore(clickHouse);
        _aggregation = new RealtimeAggregation(views, schemas, dedupeWindow);
        _sql = [.. views.Select(v => new ViewSql(v))];
        _columns = [.. _sql.Select(s => s.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type)).ToArray())];
        _metrics = metrics;
        _clock = clock ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public string Name => "realtime-views";

    /// <inheritdoc />
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await _store.EnsurePipelineStateAsync(cancellationToken);
        foreach (var sql in _sql)
        {
            await _store.EnsureViewAsync(sql, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task WriteAsync(IReadOnlyList<ConsumedEvent> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        var first = new Dictionary<int, long>();
        var last = new Dictionary<int, long>();
        foreach (var c in batch)
        {
            first[c.Partition] = first.TryGetValue(c.Partition, out var f) ? Math.Min(f, c.Offset) : c.Offset;
            last[c.Partition] = last.TryGetValue(c.Partition, out var l) ? Math.Max(l, c.Offset) : c.Offset;
        }

        // A partition seen for the first time, or not continuing where this instance left off (restart,
        // rebalance, rewind): ask the tables how far each view is already durable.
        if (first.Any(p => !_nextExpected.TryGetValue(p.Key, out var next) || next != p.Value))
        {
            await ReadDurableOffsetsAsync(cancellationToken);
        }

        await RefreshWatermarksAsync(cancellationToken);
        var result = _aggregation.Aggregate(batch,
            (view, partition) => _durableThrough.TryGetValue((view, partition), out var through) ? through : -1,
            view => _watermarks.TryGetValue(view, out var w) ? w : DateTime.MinValue);

        for (var v = 0; v < _sql.Length; v++)
        {
            if (result.Rows[v].Count > 0)
            {
                await _clickHouse.InsertAsync(_sql[v].RealtimeTable, _columns[v], result.Rows[v], cancellationToken);
            }
        }

        var changes = new List<ViewChange>();
        for (var v = 0; v < _sql.Length; v++)
        {
            if (result.Rows[v].Count > 0)
            {
                var buckets = result.Rows[v].Select(r => (DateTime)r[0]!).ToList();
                changes.Add(new ViewChange(_sql[v].View.Name, buckets.Min(), buckets.Max(), "speed"));
            }
        }

        await _store.RecordViewChangesAsync(changes, ServingStore.ThisInstance, cancellationToken);
        _aggregation.Commit(result);

        foreach (var (partition, offset) in last)
        {
            _nextExpected[partition] = offset + 1;
        }

        if (_metrics is not null)
        {
            _metrics.Duplicates.Add(result.Duplicates);
            for (var v = 0; v < _sql.Length; v++)
            {
                var tag = new KeyValuePair<string, object?>("view", _sql[v].View.Name);
                _metrics.Late.Add(result.Late[v], tag);
                _metrics.Counted.Add(result.Counted[v], tag);
            }
        }
    }

    private async Task ReadDurableOffsetsAsync(CancellationToken cancellationToken)
    {
        foreach (var sql in _sql)
        {
            foreach (var (partition, offset) in await _store.ReadRealtimePositionsAsync(sql, cancellationToken))
            {
                _durableThrough[(sql.View.Name, partition)] = offset;
            }
        }
    }

    private async Task RefreshWatermarksAsync(CancellationToken cancellationToken)
    {
        var now = _clock.GetTimestamp();
        if (_watermarksReadAt != long.MinValue && _clock.GetElapsedTime(_watermarksReadAt, now) < WatermarkRefresh)
        {
            return;
        }

        var watermarks = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        foreach (var sql in _sql)
        {
            watermarks[sql.View.Name] = await _store.ReadWatermarkAsync(sql, cancellationToken);
        }

        _watermarks = watermarks;
        _watermarksReadAt = now;
    }
}
