using LambdaPlatform.Batch.Archive;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Serving.Store;
using LambdaPlatform.Speed;

namespace LambdaPlatform.Hosting;

/// <summary>
/// The speed layer's progress, recorded in the serving ClickHouse (<see cref="ServingStore.RecordSpeedProgressAsync"/>) at each
/// durable flush. Keeps, per partition, the newest event time flushed so far (seeded from the table the first time a partition
/// is seen, so a restart or rebalance never makes it go back), and what each flush read (records, dead letters with samples:
/// <see cref="ServingStore.RecordIngestAsync"/>). Used by one consumer (its flush loop); not thread-safe.
/// </summary>
public sealed class ClickHouseSpeedProgress(IClickHouse clickHouse) : ISpeedProgress
{
    private readonly ServingStore _store = new(clickHouse);
    private readonly Dictionary<(string Topic, int Partition), DateTime?> _newest = [];

    /// <inheritdoc />
    public async Task RecordAsync(string consumerGroup, IReadOnlyList<PartitionFlush> partitions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        if (partitions.Any(p => !_newest.ContainsKey((p.Topic, p.Partition))))
        {
            foreach (var known in await _store.ReadSpeedProgressAsync(consumerGroup, cancellationToken))
            {
                _newest.TryAdd((known.Topic, known.Partition), known.NewestEventTime);
            }
        }

        var rows = new List<SpeedPartitionProgress>(partitions.Count);
        foreach (var p in partitions)
        {
            var before = _newest.GetValueOrDefault((p.Topic, p.Partition));
            var newest = before is { } b && (p.NewestEventTime is null || b > p.NewestEventTime) ? b : p.NewestEventTime;
            rows.Add(new SpeedPartitionProgress(consumerGroup, p.Topic, p.Partition, p.NextOffset, newest, p.HighWatermark, p.FlushedAt, ServingStore.ThisInstance));
        }

        await _store.RecordSpeedProgressAsync(rows, cancellationToken);
        foreach (var row in rows)
        {
            _newest[(row.Topic, row.Partition)] = row.NewestEventTime;
        }
    }

    /// <inheritdoc />
    public Task RecordIngestAsync(IngestRecord flush, CancellationToken cancellationToken = default) => _store.RecordIngestAsync(flush, cancellationToken);
}

/// <summary>
/// The archiver's progress, recorded in the serving ClickHouse (<see cref="ServingStore.RecordArchiveProgressAsync"/>) after each
/// publication. Creates the pipeline-state tables on first use. Thread-safe.
/// </summary>
public sealed class ClickHouseArchiveProgress(IClickHouse clickHouse, TimeProvider clock) : IArchiveProgress
{
    private readonly ServingStore _store = new(clickHouse);
    private volatile bool _tablesReady;

    /// <inheritdoc />
    public async Task RecordAsync(int partition, long through, CancellationToken cancellationToken = default)
    {
        if (!_tablesReady)
        {
            await _store.EnsurePipelineStateAsync(cancellationToken);
            _tablesReady = true;
        }

        await _store.RecordArchiveProgressAsync(partition, through, clock.GetUtcNow().UtcDateTime, ServingStore.ThisInstance, cancellationToken);
    }
}
