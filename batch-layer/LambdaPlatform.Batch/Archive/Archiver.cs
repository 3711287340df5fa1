using Confluent.Kafka;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Batch.Archive;

/// <summary>
/// The archiver (group <see cref="ArchiverOptions.GroupId"/>): copies every valid event of the topic into the
/// immutable master dataset exactly once, duplicates (same event id) included; invalid records are skipped and
/// counted (the speed layer dead-letters them).
/// </summary>
/// <remarks>
/// <para><b>Publication.</b> Valid events are buffered per partition and hour (UTC event time). A partition's
/// buffers are published together when it holds <see cref="ArchiverOptions.MaxFileEvents"/> events, when its oldest
/// record waited <see cref="ArchiverOptions.MaxFileAge"/>, under memory pressure, on revocation and on shutdown:
/// for each hour, write a temporary file, fsync it, rename it atomically to
/// <c>&lt;partition&gt;-&lt;first&gt;-&lt;last&gt;.parquet</c> (the consumed offset range, the same in every hour folder of
/// the publication) and fsync the folder; then mark the days changed; then record the partition as archived through
/// <c>last</c> (<see cref="MasterDataset.RecordArchivedAsync"/>); then commit <c>last + 1</c>.</para>
/// <para><b>Exactly once.</b> On every assignment the archiver trusts the files over the committed offset. Let
/// <c>[F, L]</c> be the partition's latest published range and <c>C</c> its committed offset. If <c>C &gt; L</c> (or
/// no file exists) it resumes at <c>C</c>. Otherwise the latest publication may have been cut short by a crash (some of
/// its hour files renamed, others not): it resumes at <c>F</c>, re-reads exactly <c>[F, L]</c>, writes only the hours
/// that have no file for that range yet, under the same name, and then carries on from <c>L + 1</c>. No offset range
/// already in a file is ever written again, and none is skipped.</para>
/// <para><b>Disk errors</b> (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>): nothing is
/// committed, <see cref="Health"/> turns unhealthy, the publication is retried with exponential backoff (consumption
/// waits: memory stays bounded) and resumes where it failed, without a gap.</para>
/// <para>Several instances in one group share the partitions. Threading: runs on one dedicated thread; the
/// properties may be read from any thread.</para>
/// </remarks>
public sealed class Archiver : BackgroundService
{
    private const int MaxPooledBuffers = 4; // a full buffer holds ~50 MB of arrays and payload chunks
    private static readonly TimeSpan DueCheckInterval = TimeSpan.FromMilliseconds(100);

    private readonly ArchiverOptions _options;
    private readonly EventSchemaRegistry _schemas;
    private readonly EventDecoderOptions _decoderOptions;
    private readonly ArchiverMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly IArchiveProgress? _progress;
    private readonly Dictionary<int, PartitionState> _partitions = [];
    private readonly Stack<MasterEventBuffer> _pool = new();
    private volatile ArchiverHealth _health = new(true, "starting", null);
    private long _eventsArchived;
    private long _invalidEvents;
    private long _filesPublished;
    private int _buffered;
    private bool _crashed;

    /// <summary>Creates the archiver; nothing connects or touches the disk until the host starts it.</summary>
    /// <exception cref="ArgumentException">A setting of <paramref name="options"/> is invalid; the message names it.</exception>
    /// <param name="options">Settings.</param>
    /// <param name="schemas">Event schemas, to tell valid records from invalid ones.</param>
    /// <param name="metrics">Instruments to record into.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="clock">Clock for file ages and state stamps; default the system clock.</param>
    /// <param name="decoderOptions">Decoder settings; default with <paramref name="clock"/>.</param>
    /// <param name="progress">Told after each publication how far its partition is archived; none by default.</param>
    public Archiver(ArchiverOptions options, EventSchemaRegistry schemas, ArchiverMetrics metrics, ILogger<Archiver> logger,
        TimeProvider? clock = null, EventDecoderOptions? decoderOptions = null, IArchiveProgress? progress = null)
    {
        _progress = progress;
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        _schemas = schemas ?? throw new ArgumentNullException(nameof(schemas));
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _clock = clock ?? TimeProvider.System;
        _decoderOptions = decoderOptions ?? new EventDecoderOptions { Clock = _clock };
        Dataset = new MasterDataset(_options.RootPath, _clock);
    }

    /// <summary>The master dataset written to.</summary>
    public MasterDataset Dataset { get; }

    /// <summary>Whether the archiver is keeping up: false while publications fail, and after a crash.</summary>
    public ArchiverHealth Health => _health;

    /// <summary>Valid events in published files, by this instance.</summary>
    public long EventsArchived => Interlocked.Read(ref _eventsArchived);

    /// <summary>Invalid records skipped, by this instance.</summary>
    public long InvalidEvents => Interlocked.Read(ref _invalidEvents);

    /// <summary>Files published, by this instance.</summary>
    public long FilesPublished => Interlocked.Read(ref _filesPublished);

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => RunAsync(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var config = KafkaDefaults.ConsumerConfig(_options.BootstrapServers, _options.GroupId);
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) =>
            {
                if (e.IsFatal)
                {
                    _health = new ArchiverHealth(false, "fatal Kafka error: " + e.Reason, _health.LastPublishAt);
                }

                _logger.LogWarning("kafka: {Reason}", e.Reason);
            })
            .SetPartitionsAssignedHandler(OnAssigned)
            .SetPartitionsRevokedHandler(OnRevoked)
            .SetPartitionsLostHandler((_, lost) => Drop(lost, "lost"))
            .Build();
        var decoder = new EventDecoder(_schemas, _decoderOptions);
        consumer.Subscribe(_options.Topic);
        _health = new ArchiverHealth(true, "consuming", null);
        var graceful = false;
        try
        {
            var nextDueCheck = _clock.GetTimestamp();
            while (!stoppingToken.IsCancellationRequested)
            {
                ConsumeResult<byte[]?, byte[]?>? record = null;
                try
                {
                    record = consumer.Consume(DueCheckInterval);
                }
                catch (ConsumeException e) when (!e.Error.IsFatal)
                {
                    // A failed fetch (connection dropped, request timed out): librdkafka fetches again from the same offset.
                    _logger.LogWarning("kafka: {Reason}", e.Error.Reason);
                }

                if (record is { IsPartitionEOF: false })
                {
                    await OnRecordAsync(consumer, decoder, record, stoppingToken);
                }

                if (_clock.GetTimestamp() >= nextDueCheck)
                {
                    await PublishDueAsync(consumer, stoppingToken);
                    nextDueCheck = _clock.GetTimestamp() + (long)(DueCheckInterval.TotalSeconds * _clock.TimestampFrequency);
                }
            }

            graceful = true;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            graceful = true;
        }
        catch (Exception e)
        {
            _crashed = true;
            _health = new ArchiverHealth(false, "crashed: " + e.Message, _health.LastPublishAt);
            _logger.LogError(e, "archiver stopped on an error; nothing unpublished was committed");
            throw;
        }
        finally
        {
            await ShutdownAsync(consumer, graceful);
        }
    }

    private async Task ShutdownAsync(IConsumer<byte[]?, byte[]?> consumer, bool graceful)
    {
        if (graceful)
        {
            // One attempt each, no retries: what does not make it is not committed and is read again later.
            foreach (var state in _partitions.Values.ToList())
            {
                try
                {
                    await PublishPendingAsync(consumer, state, CancellationToken.None);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaException)
                {
                    _logger.LogWarning("partition {Partition}: final publication failed, will be re-read: {Error}", state.Partition, e.Message);
                }
            }
        }

        foreach (var state in _partitions.Values)
        {
            Release(state);
        }

        _partitions.Clear();
        try
        {
            consumer.Close();
        }
        catch (KafkaException e) when (!graceful)
        {
            _logger.LogWarning("closing the consumer after a crash failed: {Reason}", e.Error.Reason);
        }
    }

    private async Task OnRecordAsync(IConsumer<byte[]?, byte[]?> consumer, EventDecoder decoder, ConsumeResult<byte[]?, byte[]?> record,
        CancellationToken cancellationToken)
    {
        _metrics.EventsIn.Add(1);
        var offset = record.Offset.Value;
        if (!_partitions.TryGetValue(record.Partition.Value, out var state))
        {
            return; // Not (or no longer) ours: its next owner reads it.
        }

        if (state.Repair is { } done && offset > done.Range.Last)
        {
            // The records up to the end of the range are gone (retention): finish the repair with what was read.
            await PublishAsync(consumer, state, retry: true, cancellationToken);
        }

        if (state.Repair is null && state.First is null)
        {
            state.First = offset;
            state.OpenedAt = _clock.GetTimestamp();
        }

        state.Last = offset;
        state.Uncommitted = true;
        Schemas.Validation.Violation? violation;
        if (record.Message.Value is not { } value)
        {
            violation = new Schemas.Validation.Violation("json", "empty message (null value)");
        }
        else if (decoder.TryDecode(value, out var decoded, out violation))
        {
            var hour = HourKey.Of(decoded!.Timestamp);
            if (state.Repair is { } repair && repair.Present.Contains(hour))
            {
                state.TouchedDays.Add(hour.Date); // Already in a published file of this range.
            }
            else
            {
                state.BufferFor(hour, this).Add(decoded, state.Partition, offset);
                state.Events++;
                _buffered++;
            }
        }

        if (violation is not null)
        {
            Interlocked.Increment(ref _invalidEvents);
            _metrics.Invalid.Add(1, new KeyValuePair<string, object?>("rule", violation.Rule));
        }

        if (state.Repair is { } r)
        {
            if (offset >= r.Range.Last)
            {
                await PublishAsync(consumer, state, retry: true, cancellationToken);
            }

            return;
        }

        if (state.Events >= _options.MaxFileEvents)
        {
            await PublishAsync(consumer, state, retry: true, cancellationToken);
        }
        else if (_buffered > _options.MaxBufferedEvents)
        {
            var largest = _partitions.Values.Where(s => s.Repair is null).MaxBy(s => s.Events);
            if (largest is not null)
            {
                await PublishAsync(consumer, largest, retry: true, cancellationToken);
            }
        }
    }

    private async Task PublishDueAsync(IConsumer<byte[]?, byte[]?> consumer, CancellationToken cancellationToken)
    {
        foreach (var state in _partitions.Values.ToList())
        {
            if (state.Repair is null && state.Uncommitted && _clock.GetElapsedTime(state.OpenedAt) >= _options.MaxFileAge)
            {
                await PublishAsync(consumer, state, retry: true, cancellationToken);
            }
        }
    }

    /// <summary>Publishes what a partition has buffered, unless it is in the middle of a repair (then it is dropped).</summary>
    private async Task PublishPendingAsync(IConsumer<byte[]?, byte[]?> consumer, PartitionState state, CancellationToken cancellationToken)
    {
        if (state.Repair is null && state.Uncommitted)
        {
            await PublishAsync(consumer, state, retry: false, cancellationToken);
        }
    }

    private async Task PublishAsync(IConsumer<byte[]?, byte[]?> consumer, PartitionState state, bool retry, CancellationToken cancellationToken)
    {
        var range = state.Repair?.Range ?? new OffsetRange(state.First ?? state.Last, state.Last);
        var started = _clock.GetTimestamp();
        var files = new List<MasterFile>();
        long bytes = 0;
        var events = 0;
        var delay = _options.RetryBaseDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                foreach (var (hour, buffer) in state.Hours)
                {
                    if (buffer.Count == 0 || state.Done.Contains(hour))
                    {
                        continue;
                    }

                    var (file, size) = await WriteFileAsync(hour, state.Partition, range, buffer, cancellationToken);
                    state.Done.Add(hour);
                    files.Add(file);
                    bytes += size;
                    events += buffer.Count;
                    _options.Faults?.AfterRename?.Invoke(file);
                }

                await Dataset.MarkChangedAsync(state.Hours.Keys.Select(h => h.Date).Concat(state.TouchedDays), cancellationToken);
                if (files.Count > 0 || state.Repair is not null)
                {
                    // The files now hold every valid record of the range: say so before committing (the batch layer's
                    // watermark waits for it). A range of invalid records only stays open and is recorded with the next.
                    await Dataset.RecordArchivedAsync(state.Partition, range.Last, cancellationToken);
                }

                break;
            }
            catch (Exception e) when (retry && e is IOException or UnauthorizedAccessException)
            {
                _metrics.PublishFailures.Add(1);
                _health = new ArchiverHealth(false, $"publishing partition {state.Partition} {range} failed (attempt {attempt}), retrying: {e.Message}", _health.LastPublishAt);
                _logger.LogWarning("publishing partition {Partition} {Range} failed (attempt {Attempt}), retrying in {Delay}: {Error}",
                    state.Partition, range, attempt, delay, e.Message);
                await Task.Delay(delay, _clock, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.RetryMaxDelay.Ticks));
            }
        }

        _options.Faults?.BeforeCommit?.Invoke(new ArchivePublication(state.Partition, range, files, events));
        Commit(consumer, state.Partition, range.Last + 1);
        if (_progress is not null && (files.Count > 0 || state.Repair is not null))
        {
            try
            {
                await _progress.RecordAsync(state.Partition, range.Last, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogWarning("partition {Partition}: reporting archive progress through {Through} failed (the master dataset has it): {Error}", state.Partition, range.Last, e.Message);
            }
        }

        _metrics.PublishDuration.Record(_clock.GetElapsedTime(started).TotalSeconds);
        _metrics.Files.Add(files.Count);
        _metrics.Bytes.Add(bytes);
        _metrics.Archived.Add(events);
        Interlocked.Add(ref _eventsArchived, events);
        Interlocked.Add(ref _filesPublished, files.Count);
        _health = new ArchiverHealth(true, "consuming", _clock.GetUtcNow().UtcDateTime);

        var carryOver = files.Count == 0 && state.Repair is null;
        ResetBuffers(state);
        state.Repair = null;
        state.Uncommitted = false;
        if (carryOver)
        {
            // Only invalid records: keep the range open so that published ranges stay contiguous.
            state.OpenedAt = _clock.GetTimestamp();
        }
        else
        {
            state.First = null;
        }
    }

    private async Task<(MasterFile File, long Size)> WriteFileAsync(HourKey hour, int partition, OffsetRange range, MasterEventBuffer buffer,
        CancellationToken cancellationToken)
    {
        var folder = Dataset.HourPath(hour);
        Durable.CreateDirectory(folder);
        var name = MasterFile.FileName(partition, range);
        var path = Path.Combine(folder, name);
        var temp = Path.Combine(folder, "." + name + "." + Guid.NewGuid().ToString("N") + ".tmp");
        long size;
        try
        {
            size = await MasterParquet.WriteFileAsync(buffer, temp, _options.Compression, cancellationToken);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        if (!Durable.TryPublish(temp, path))
        {
            // Same partition and range: the same records, already published (e.g. an earlier attempt whose folder
            // fsync failed). The published file stays; files never change.
            TryDelete(temp);
            size = new FileInfo(path).Length;
            _logger.LogWarning("{Path} was already published; kept it", path);
        }

        return (new MasterFile(path, hour, partition, range), size);
    }

    private void Commit(IConsumer<byte[]?, byte[]?> consumer, int partition, long next)
    {
        try
        {
            consumer.Commit([new TopicPartitionOffset(_options.Topic, partition, next)]);
        }
        catch (KafkaException e) when (!e.Error.IsFatal)
        {
            // The files prove the range: whoever reads the partition next resumes after it anyway.
            _logger.LogWarning("partition {Partition}: offset commit failed, the files prove the range: {Reason}", partition, e.Error.Reason);
        }
    }

    private List<TopicPartitionOffset> OnAssigned(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> assigned)
    {
        // Files first: they are the proof. A scan error here stops the archiver rather than guessing a position.
        var files = Dataset.ListFiles();
        var coverage = MasterDataset.Coverage(files);
        var committed = consumer.Committed(assigned, TimeSpan.FromSeconds(30))
            .ToDictionary(c => c.Partition.Value, c => c.Offset);
        var positions = new List<TopicPartitionOffset>(assigned.Count);
        foreach (var tp in assigned)
        {
            var p = tp.Partition.Value;
            if (_partitions.Remove(p, out var stale))
            {
                Release(stale);
            }

            var state = new PartitionState(p);
            var commit = committed.TryGetValue(p, out var c) && c.Value >= 0 ? c.Value : (long?)null;
            Offset start;
            if (!coverage.TryGetValue(p, out var proven))
            {
                start = commit ?? Offset.Unset;
            }
            else if (commit is { } cv && cv > proven.MaxLastOffset)
            {
                start = cv;
            }
            else
            {
                // The latest publication may be incomplete: re-read its range, write only its missing hours.
                var range = new OffsetRange(proven.LatestFirstOffset, proven.MaxLastOffset);
                var present = files.Where(f => f.Partition == p && f.Offsets.Covers(range)).Select(f => f.Hour).ToHashSet();
                state.Repair = new RepairState(range, present);
                start = range.First;
            }

            _logger.LogInformation("partition {Partition} assigned: committed {Committed}, files prove up to {Proven}, resuming at {Start}{Repair}",
                p, commit, proven?.MaxLastOffset, start, state.Repair is null ? string.Empty : " (re-checking the latest publication " + state.Repair.Range + ")");
            _partitions[p] = state;
            positions.Add(new TopicPartitionOffset(tp, start));
        }

        return positions;
    }

    private void OnRevoked(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartitionOffset> revoked)
    {
        foreach (var tpo in revoked)
        {
            if (!_partitions.Remove(tpo.Partition.Value, out var state))
            {
                continue;
            }

            if (!_crashed)
            {
                try
                {
                    // The handler is synchronous and must not return before the files are in place, or the next owner
                    // could resume behind them. It runs on the archiver's own thread (no synchronization context).
                    PublishPendingAsync(consumer, state, CancellationToken.None).GetAwaiter().GetResult();
                }
                catch (Exception e)
                {
                    _logger.LogWarning("partition {Partition} revoked: publication failed, its next owner re-reads it: {Error}", state.Partition, e.Message);
                }
            }

            Release(state);
        }
    }

    private void Drop(List<TopicPartitionOffset> partitions, string why)
    {
        foreach (var tpo in partitions)
        {
            if (_partitions.Remove(tpo.Partition.Value, out var state))
            {
                _logger.LogWarning("partition {Partition} {Why}: dropped {Events} unpublished events; they will be read again", state.Partition, why, state.Events);
                Release(state);
            }
        }
    }

    private void Release(PartitionState state) => ResetBuffers(state);

    private void ResetBuffers(PartitionState state)
    {
        foreach (var buffer in state.Hours.Values)
        {
            _buffered -= buffer.Count;
            buffer.Clear();
            if (_pool.Count < MaxPooledBuffers)
            {
                _pool.Push(buffer);
            }
        }

        state.Hours.Clear();
        state.Done.Clear();
        state.TouchedDays.Clear();
        state.Events = 0;
        state.LastHour = null;
    }

    private MasterEventBuffer RentBuffer() => _pool.TryPop(out var buffer) ? buffer : new MasterEventBuffer(4096);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A stale temporary file is harmless (readers ignore it) and the compactor removes it later.
        }
    }

    private sealed record RepairState(OffsetRange Range, HashSet<HourKey> Present);

    private sealed class PartitionState(int partition)
    {
        public int Partition { get; } = partition;

        /// <summary>First offset of the open range (null when nothing was consumed since the last publication).</summary>
        public long? First { get; set; }

        public long Last { get; set; } = -1;

        public long OpenedAt { get; set; }

        public bool Uncommitted { get; set; }

        public int Events { get; set; }

        public RepairState? Repair { get; set; }

        public SortedDictionary<HourKey, MasterEventBuffer> Hours { get; } = [];

        /// <summary>Hours of the current publication already renamed into place (a retry skips them).</summary>
        public HashSet<HourKey> Done { get; } = [];

        /// <summary>Days of events skipped during a repair because their file exists (still marked changed).</summary>
        public HashSet<DateOnly> TouchedDays { get; } = [];

        public (HourKey Hour, MasterEventBuffer Buffer)? LastHour { get; set; }

        public MasterEventBuffer BufferFor(HourKey hour, Archiver owner)
        {
            if (LastHour is { } last && last.Hour == hour)
            {
                return last.Buffer;
            }

            if (!Hours.TryGetValue(hour, out var buffer))
            {
                buffer = owner.RentBuffer();
                Hours[hour] = buffer;
            }

            LastHour = (hour, buffer);
            return buffer;
        }
    }
}

/// <summary>Health of an archiver.</summary>
/// <param name="Healthy">False while publications fail, after a fatal Kafka error, or after a crash.</param>
/// <param name="Status">What it is doing, or why it is unhealthy.</param>
/// <param name="LastPublishAt">When the last publication was committed (UTC), or null.</param>
public sealed record ArchiverHealth(bool Healthy, string Status, DateTime? LastPublishAt);
