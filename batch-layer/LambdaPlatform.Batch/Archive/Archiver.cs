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
/// <para><b>Parts.</b> This class is the thin Kafka side: the consume loop, the decoder, the rows buffered per partition
/// and hour, commits, health and metrics. What each partition's archive resumes at, buffers, publishes and hands over is
/// decided by its <see cref="PartitionArchive"/> (a pure state machine); a publication's file-system steps are run by an
/// <c>ArchivePublisher</c>. Exported gauges (<see cref="ArchiverMetrics"/>): the partitions assigned and the valid events
/// buffered and not yet published, so an operator (or the chaos suite) can see the work in flight.</para>
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
    private readonly Dictionary<int, Slot> _partitions = [];
    private readonly ArchivePublisher _publisher;
    private readonly MasterArchiveFiles _files;
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
        _publisher = new ArchivePublisher(_clock, _options.RetryBaseDelay, _options.RetryMaxDelay, _options.Faults);
        _files = new MasterArchiveFiles(Dataset, _options.Compression, RowsOf, _logger);
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
            .SetLogHandler(KafkaLogs.Handler<byte[]?, byte[]?>(_logger, reset =>
                _metrics.Skipped.Add(reset.Skipped, new KeyValuePair<string, object?>("partition", reset.Partition))))
            .SetPartitionsAssignedHandler(OnAssigned)
            .SetPartitionsRevokedHandler(OnRevoked)
            .SetPartitionsLostHandler((_, lost) => Drop(lost, "lost"))
            .Build();
        _metrics.Skipped.Add(0); // exported from the start, so that an alert sees the first skip as an increase
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
            foreach (var slot in _partitions.Values.ToList())
            {
                try
                {
                    await PublishPendingAsync(consumer, slot, CancellationToken.None);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaException)
                {
                    _logger.LogWarning("partition {Partition}: final publication failed, will be re-read: {Error}", slot.Archive.Partition, e.Message);
                }
            }
        }

        foreach (var slot in _partitions.Values)
        {
            Release(slot);
        }

        _partitions.Clear();
        _metrics.SetAssigned([]);
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
        if (!_partitions.TryGetValue(record.Partition.Value, out var slot))
        {
            return; // Not (or no longer) ours: its next owner reads it.
        }

        var archive = slot.Archive;
        if (archive.FinishesRepairBefore(offset))
        {
            // The records up to the end of the range are gone (retention): finish the repair with what was read.
            await PublishAsync(consumer, slot, retry: true, cancellationToken);
        }

        Schemas.Validation.Violation? violation = null;
        DecodedEvent? decoded = null;
        if (record.Message.Value is not { } value)
        {
            violation = new Schemas.Validation.Violation("json", "empty message (null value)");
        }
        else if (!decoder.TryDecode(value, out decoded, out violation))
        {
            decoded = null;
        }

        var hour = decoded is null ? (HourKey?)null : HourKey.Of(decoded.Timestamp);
        if (archive.Accept(offset, hour, _clock.GetTimestamp()) == RecordOutcome.Buffered)
        {
            slot.BufferFor(hour!.Value, this).Add(decoded!, archive.Partition, offset);
            _buffered++;
            _metrics.SetBuffered(_buffered);
        }

        if (violation is not null)
        {
            Interlocked.Increment(ref _invalidEvents);
            _metrics.Invalid.Add(1, new KeyValuePair<string, object?>("rule", violation.Rule));
        }

        if (archive.Repairing is not null)
        {
            if (archive.ShouldPublish(_options.MaxFileEvents))
            {
                await PublishAsync(consumer, slot, retry: true, cancellationToken);
            }

            return;
        }

        if (archive.ShouldPublish(_options.MaxFileEvents))
        {
            await PublishAsync(consumer, slot, retry: true, cancellationToken);
        }
        else if (_buffered > _options.MaxBufferedEvents)
        {
            var largest = _partitions.Values.Where(s => s.Archive.Repairing is null).MaxBy(s => s.Archive.Events);
            if (largest is not null)
            {
                await PublishAsync(consumer, largest, retry: true, cancellationToken);
            }
        }
    }

    private async Task PublishDueAsync(IConsumer<byte[]?, byte[]?> consumer, CancellationToken cancellationToken)
    {
        foreach (var slot in _partitions.Values.ToList())
        {
            if (slot.Archive.IsDue(_clock.GetElapsedTime(slot.Archive.OpenedAt), _options.MaxFileAge))
            {
                await PublishAsync(consumer, slot, retry: true, cancellationToken);
            }
        }
    }

    /// <summary>Publishes what a partition has buffered, unless it is in the middle of a repair (then it is dropped).</summary>
    private async Task PublishPendingAsync(IConsumer<byte[]?, byte[]?> consumer, Slot slot, CancellationToken cancellationToken)
    {
        if (slot.Archive.Pending)
        {
            await PublishAsync(consumer, slot, retry: false, cancellationToken);
        }
    }

    private async Task PublishAsync(IConsumer<byte[]?, byte[]?> consumer, Slot slot, bool retry, CancellationToken cancellationToken)
    {
        var archive = slot.Archive;
        var started = _clock.GetTimestamp();
        var range = archive.PublicationRange;
        using var activity = ArchiveTracing.Source.StartActivity("archive.publish");
        activity?.SetTag("messaging.destination.partition.id", archive.Partition.ToString(System.Globalization.CultureInfo.InvariantCulture));
        activity?.SetTag("lambda.archive.range", range.ToString());
        var result = await _publisher.PublishAsync(archive, _files, retry, (attempt, delay, e) =>
        {
            activity?.AddEvent(new System.Diagnostics.ActivityEvent("publish failed", tags: new System.Diagnostics.ActivityTagsCollection { ["attempt"] = attempt, ["error"] = e.Message }));
            _metrics.PublishFailures.Add(1);
            _health = new ArchiverHealth(false, $"publishing partition {archive.Partition} {range} failed (attempt {attempt}), retrying: {e.Message}", _health.LastPublishAt);
            _logger.LogWarning("publishing partition {Partition} {Range} failed (attempt {Attempt}), retrying in {Delay}: {Error}",
                archive.Partition, range, attempt, delay, e.Message);
        }, cancellationToken);

        _options.Faults?.BeforeCommit?.Invoke(new ArchivePublication(archive.Partition, result.Range, result.Files, result.Events));
        Commit(consumer, archive.Partition, archive.CommitOffset);
        if (_progress is not null && result.RecordsArchive)
        {
            try
            {
                await _progress.RecordAsync(archive.Partition, result.Range.Last, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogWarning("partition {Partition}: reporting archive progress through {Through} failed (the master dataset has it): {Error}", archive.Partition, result.Range.Last, e.Message);
            }
        }

        activity?.SetTag("lambda.archive.files", result.Files.Count);
        activity?.SetTag("lambda.archive.events", result.Events);
        activity?.SetTag("lambda.archive.bytes", result.Bytes);
        _metrics.PublishDuration.Record(_clock.GetElapsedTime(started).TotalSeconds);
        _metrics.Files.Add(result.Files.Count);
        _metrics.Bytes.Add(result.Bytes);
        _metrics.Archived.Add(result.Events);
        Interlocked.Add(ref _eventsArchived, result.Events);
        Interlocked.Add(ref _filesPublished, result.Files.Count);
        _health = new ArchiverHealth(true, "consuming", _clock.GetUtcNow().UtcDateTime);
        ReleaseBuffers(slot);
        archive.Completed(_clock.GetTimestamp());
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

            var commit = committed.TryGetValue(p, out var c) && c.Value >= 0 ? c.Value : (long?)null;
            var archive = PartitionArchive.Resume(p, commit, files);
            _logger.LogInformation("partition {Partition} assigned: committed {Committed}, files prove up to {Proven}, resuming at {Start}{Repair}",
                p, commit, ProvenThrough(files, p), archive.ResumeAt,
                archive.Repairing is null ? string.Empty : " (re-checking the latest publication " + archive.Repairing + ")");
            _partitions[p] = new Slot(archive);
            positions.Add(new TopicPartitionOffset(tp, archive.ResumeAt is { } start ? new Offset(start) : Offset.Unset));
        }

        _metrics.SetAssigned(_partitions.Keys);
        return positions;
    }

    private static long? ProvenThrough(IReadOnlyList<MasterFile> files, int partition) =>
        files.Where(f => f.Partition == partition).Select(f => (long?)f.Offsets.Last).Max();

    private void OnRevoked(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartitionOffset> revoked)
    {
        foreach (var tpo in revoked)
        {
            if (!_partitions.Remove(tpo.Partition.Value, out var slot))
            {
                continue;
            }

            if (!_crashed && slot.Archive.Handover == Handover.PublishFirst)
            {
                try
                {
                    // The handler is synchronous and must not return before the files are in place, or the next owner
                    // could resume behind them. It runs on the archiver's own thread (no synchronization context).
                    PublishPendingAsync(consumer, slot, CancellationToken.None).GetAwaiter().GetResult();
                }
                catch (Exception e)
                {
                    _logger.LogWarning("partition {Partition} revoked: publication failed, its next owner re-reads it: {Error}", slot.Archive.Partition, e.Message);
                }
            }

            Release(slot);
        }

        _metrics.SetAssigned(_partitions.Keys);
    }

    private void Drop(List<TopicPartitionOffset> partitions, string why)
    {
        foreach (var tpo in partitions)
        {
            if (_partitions.Remove(tpo.Partition.Value, out var slot))
            {
                _logger.LogWarning("partition {Partition} {Why}: dropped {Events} unpublished events; they will be read again", slot.Archive.Partition, why, slot.Archive.Events);
                Release(slot);
            }
        }

        _metrics.SetAssigned(_partitions.Keys);
    }

    private void Release(Slot slot)
    {
        ReleaseBuffers(slot);
        slot.Archive.Clear();
    }

    private void ReleaseBuffers(Slot slot)
    {
        foreach (var buffer in slot.Buffers.Values)
        {
            _buffered -= buffer.Count;
            buffer.Clear();
            if (_pool.Count < MaxPooledBuffers)
            {
                _pool.Push(buffer);
            }
        }

        slot.Buffers.Clear();
        slot.LastHour = null;
        _metrics.SetBuffered(_buffered);
    }

    private MasterEventBuffer RentBuffer() => _pool.TryPop(out var buffer) ? buffer : new MasterEventBuffer(4096);

    private MasterEventBuffer RowsOf(int partition, HourKey hour) =>
        _partitions.TryGetValue(partition, out var slot) && slot.Buffers.TryGetValue(hour, out var buffer)
            ? buffer
            : throw new InvalidOperationException($"partition {partition} has no rows buffered for {hour}");

    /// <summary>A partition owned by this instance: its archive state machine and the rows it buffered, per hour.</summary>
    private sealed class Slot(PartitionArchive archive)
    {
        public PartitionArchive Archive { get; } = archive;

        public Dictionary<HourKey, MasterEventBuffer> Buffers { get; } = [];

        public (HourKey Hour, MasterEventBuffer Buffer)? LastHour { get; set; }

        public MasterEventBuffer BufferFor(HourKey hour, Archiver owner)
        {
            if (LastHour is { } last && last.Hour == hour)
            {
                return last.Buffer;
            }

            if (!Buffers.TryGetValue(hour, out var buffer))
            {
                buffer = owner.RentBuffer();
                Buffers[hour] = buffer;
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
