using System.Diagnostics;
using System.Runtime.InteropServices;
using Confluent.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Serving.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace LambdaPlatform.Speed;

/// <summary>
/// The speed layer's consumer (group <see cref="SpeedOptions.GroupId"/>): reads the events topic,
/// decodes and validates each record, sends invalid ones to the dead-letter topic with their reason,
/// writes valid ones in batches to every <see cref="IEventSink"/> at least once per
/// <see cref="SpeedOptions.FlushInterval"/>, and commits offsets only after the batch is durable. Pipelined: a batch is
/// written in the background (aggregation and ClickHouse inserts) while the consuming thread reads and decodes the next
/// one; at most one batch is in flight, and it is committed before the next is handed off, so batches reach the sinks in
/// order. A failed flush is retried with exponential backoff (100 ms doubling to 10 s, jittered) while the offsets are held
/// and the partitions paused: the consumer keeps polling, so it stays in the group, and librdkafka drops what it
/// prefetched, so memory stays bounded. <see cref="Health"/> reports it. Several instances in one group share the partitions.
/// </summary>
public sealed class SpeedConsumer : BackgroundService
{
    private readonly SpeedOptions _options;
    private readonly EventSchemaRegistry _schemas;
    private readonly EventDecoderOptions _decoderOptions;
    private readonly IReadOnlyList<IEventSink> _sinks;
    private readonly SpeedMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly ISpeedProgress? _progress;
    private static readonly TimeSpan RetryBaseDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RetryMaxDelay = TimeSpan.FromSeconds(10);

    private readonly ResiliencePipeline _retry;
    private volatile SpeedHealth _health = new(true, "starting", null);

    /// <summary>Creates the consumer; nothing connects until the host starts it.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="schemas">Event schemas.</param>
    /// <param name="sinks">Where each batch is written before its offsets are committed.</param>
    /// <param name="metrics">Instruments to record into.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="clock">Clock; default the system clock.</param>
    /// <param name="decoderOptions">Decoder settings; default with <paramref name="clock"/>.</param>
    /// <param name="progress">Told after each durable flush how far its partitions are flushed; none by default.</param>
    public SpeedConsumer(SpeedOptions options, EventSchemaRegistry schemas, IReadOnlyList<IEventSink> sinks, SpeedMetrics metrics,
        ILogger<SpeedConsumer> logger, TimeProvider? clock = null, EventDecoderOptions? decoderOptions = null, ISpeedProgress? progress = null)
    {
        _progress = progress;
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        _schemas = schemas;
        _sinks = sinks;
        _metrics = metrics;
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
        _decoderOptions = decoderOptions ?? new EventDecoderOptions { Clock = _clock };
        _retry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(100),
                MaxDelay = TimeSpan.FromSeconds(10),
                OnRetry = args =>
                {
                    _metrics.FlushFailures.Add(1);
                    _health = new SpeedHealth(false, $"creating the sinks' tables failing, retry {args.AttemptNumber + 1}: {args.Outcome.Exception?.Message}", _health.LastFlushAt);
                    _logger.LogWarning("speed sink initialization failed (attempt {Attempt}), retrying in {Delay}: {Error}", args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception?.Message);
                    return default;
                },
            })
            .Build();
    }

    /// <summary>Whether the consumer is keeping up: false while flushes fail.</summary>
    public SpeedHealth Health => _health;

    /// <summary>Total valid events flushed (durable in every sink) so far by this instance.</summary>
    public long EventsFlushed => Interlocked.Read(ref _eventsFlushed);

    private long _eventsFlushed;
    private readonly IngestTally _tally = new();

    // The batch being read (consuming thread only): its events, per partition the next offset to commit, its spans,
    // and per partition the records read since the last hand-off (added to lambda.speed.events_in at the hand-off).
    private List<ConsumedEvent> _batch = [];
    private Dictionary<int, long> _positions = [];
    private BatchTrace _trace = new();
    private readonly Dictionary<int, long> _readPerPartition = [];

    // The batch being written meanwhile, if any: at most one, committed before the next one is handed off.
    private InFlightFlush? _inFlight;
    private DeadLetterPublisher? _deadLetters;

    /// <summary>
    /// Partitions revoked or lost (a rebalance, on the consuming thread): their records are dropped from the batch being
    /// read, and the new owner reads them again from the last commit. A batch being written is waited for first, so no write
    /// of these partitions lands after this returns (KIP-848 hands them over only then); if it was written and every dead
    /// letter is acknowledged, a revoked partition's offsets are committed now (a lost one can no longer be); if its write
    /// failed, their records leave it before it is retried.
    /// </summary>
    private void Forget(IConsumer<byte[]?, byte[]?> consumer, IEnumerable<TopicPartition> partitions, bool lost)
    {
        var gone = partitions.Select(tp => tp.Partition.Value).ToHashSet();
        if (_inFlight is { } flush)
        {
            var failure = flush.Written.GetAwaiter().GetResult(); // one write attempt; never faults
            if (failure is null && !lost && _deadLetters is { IsSettled: true })
            {
                var offsets = flush.Positions.Where(p => gone.Contains(p.Key)).Select(p => new TopicPartitionOffset(_options.Topic, p.Key, p.Value)).ToList();
                try
                {
                    if (offsets.Count > 0)
                    {
                        consumer.Commit(offsets);
                    }
                }
                catch (KafkaException e)
                {
                    _logger.LogWarning("committing revoked partitions failed, their records will be re-delivered: {Reason}", e.Error.Reason);
                }
            }
            else if (failure is not null)
            {
                flush.Batch.RemoveAll(c => gone.Contains(c.Partition));
            }

            foreach (var p in gone)
            {
                flush.Positions.Remove(p);
            }
        }

        _batch.RemoveAll(c => gone.Contains(c.Partition));
        foreach (var p in gone)
        {
            _positions.Remove(p);
        }

        _metrics.Unassigned(gone);
        _metrics.SetBuffered(_batch.Count + (_inFlight?.Batch.Count ?? 0));
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => RunAsync(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        foreach (var sink in _sinks)
        {
            await _retry.ExecuteAsync(async ct => await sink.InitializeAsync(ct), stoppingToken);
        }

        var config = KafkaDefaults.ConsumerConfig(_options.BootstrapServers, _options.GroupId);
        config.QueuedMaxMessagesKbytes = _options.MaxPrefetchKilobytes;
        config.MaxPollIntervalMs = (int)_options.MaxPollInterval.TotalMilliseconds;
        using var deadLetters = new DeadLetterPublisher(KafkaDefaults.ProducerConfig(_options.BootstrapServers), _options.DeadLetterTopic);
        _deadLetters = deadLetters;
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) =>
            {
                if (e.IsFatal)
                {
                    _health = new SpeedHealth(false, "fatal Kafka error: " + e.Reason, _health.LastFlushAt);
                }

                _logger.LogWarning("kafka: {Reason}", e.Reason);
            })
            .SetLogHandler(Kafka.KafkaLogs.Handler<byte[]?, byte[]?>(_logger, reset =>
                _metrics.Skipped.Add(reset.Skipped, new KeyValuePair<string, object?>("partition", reset.Partition))))
            .SetPartitionsAssignedHandler((_, assigned) => _metrics.Assigned(assigned.Select(p => p.Partition.Value)))
            .SetPartitionsRevokedHandler((c, revoked) => Forget(c, revoked.Select(p => p.TopicPartition), lost: false))
            .SetPartitionsLostHandler((c, lost) => Forget(c, lost.Select(p => p.TopicPartition), lost: true))
            .Build();
        var decoder = new EventDecoder(_schemas, _decoderOptions);
        consumer.Subscribe(_options.Topic);
        _health = new SpeedHealth(true, "consuming", null);

        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                // A batch is handed off when it is full, when FlushInterval has passed, or when the consumer has caught up
                // with the topic (a poll found nothing), nothing is in flight and MinFlushInterval has passed.
                var batchStart = _clock.GetTimestamp();
                var flushAt = batchStart + Ticks(_options.FlushInterval);
                var lingerUntil = batchStart + Ticks(_options.MinFlushInterval);
                while (_batch.Count < _options.MaxBatchEvents)
                {
                    if (_inFlight is { Written.IsCompleted: true })
                    {
                        await CompleteAsync(consumer, deadLetters, stoppingToken);
                    }

                    var now = _clock.GetTimestamp();
                    var wait = flushAt - now;
                    if (wait <= 0)
                    {
                        break;
                    }

                    if (_inFlight is not null)
                    {
                        // Look up often enough to commit the batch in flight soon after it is durable.
                        wait = Math.Min(wait, Ticks(InFlightPoll));
                    }
                    else if (_positions.Count > 0)
                    {
                        wait = Math.Min(wait, Math.Max(0, lingerUntil - now) + Ticks(CaughtUpPoll));
                    }

                    var record = TryConsume(consumer, TimeSpan.FromTicks(Math.Max(1, wait * TimeSpan.TicksPerSecond / _clock.TimestampFrequency)));
                    if (record is null || record.IsPartitionEOF)
                    {
                        if (_inFlight is null && _positions.Count > 0 && _clock.GetTimestamp() >= lingerUntil)
                        {
                            break; // caught up
                        }

                        continue;
                    }

                    _trace.Read(record);
                    _tally.Read();
                    var partition = record.Partition.Value;
                    CollectionsMarshal.GetValueRefOrAddDefault(_readPerPartition, partition, out _)++;
                    _positions[partition] = record.Offset.Value + 1;
                    Schemas.Validation.Violation? violation;
                    if (record.Message.Value is not { } value)
                    {
                        violation = new Schemas.Validation.Violation("json", "empty message (null value)");
                    }
                    else if (decoder.TryDecode(value, out var decoded, out violation))
                    {
                        _batch.Add(new ConsumedEvent(decoded!, partition, record.Offset.Value));
                        continue;
                    }

                    _metrics.Invalid.Add(1, new KeyValuePair<string, object?>("rule", violation!.Rule), new KeyValuePair<string, object?>("partition", partition));
                    _trace.DeadLettered();
                    _tally.DeadLettered(record, violation);
                    deadLetters.Publish(record, violation);
                }

                if (_positions.Count > 0)
                {
                    if (_inFlight is not null)
                    {
                        await CompleteAsync(consumer, deadLetters, stoppingToken);
                    }

                    HandOff(consumer, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: what was read but not flushed is not committed, and will be read again.
        }
        finally
        {
            if (_inFlight is { } flush)
            {
                // Let the write end before the sinks' ClickHouse goes away; closing revokes the partitions (Forget), which
                // commits the batch if it was written.
                await flush.Written;
            }

            consumer.Close();
            _inFlight = null;
            _deadLetters = null;
            _metrics.SetBuffered(0);
        }
    }

    /// <summary>Longest wait in <c>Consume</c> while a batch is being written (20 ms), so that its commit follows soon after it is durable.</summary>
    private static readonly TimeSpan InFlightPoll = TimeSpan.FromMilliseconds(20);

    /// <summary>How long a poll must find nothing for the consumer to count as caught up with the topic (5 ms).</summary>
    private static readonly TimeSpan CaughtUpPoll = TimeSpan.FromMilliseconds(5);

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _clock.TimestampFrequency);

    /// <summary>
    /// Hands the batch read so far to a background write (the consuming thread reads on into the next one) and starts
    /// afresh. The caller has completed the previous batch.
    /// </summary>
    private void HandOff(IConsumer<byte[]?, byte[]?> consumer, CancellationToken cancellationToken)
    {
        foreach (var (partition, read) in _readPerPartition)
        {
            _metrics.EventsIn.Add(read, new KeyValuePair<string, object?>("partition", partition));
        }

        _readPerPartition.Clear();
        _trace.Consumed(_batch.Count);
        var flushSpan = _trace.StartFlush(_batch.Count);
        var flush = new InFlightFlush
        {
            Batch = _batch,
            Positions = _positions,
            Trace = _trace,
            FlushSpan = flushSpan,
            Ingest = _tally.Take(_options.GroupId, _clock.GetUtcNow().UtcDateTime),
            HandedOffAt = _clock.GetTimestamp(),
        };

        // The write inherits the flush span as its current activity (its ClickHouse statements are the span's children).
        flush.Written = Task.Run(() => WriteAsync(consumer, flush, cancellationToken), CancellationToken.None);
        Activity.Current = null;
        _inFlight = flush;
        _batch = new List<ConsumedEvent>(Math.Min(flush.Batch.Count, _options.MaxBatchEvents));
        _positions = [];
        _trace = new BatchTrace();
        _metrics.SetBuffered(flush.Batch.Count);
    }

    /// <summary>The background attempt: writes the batch to every sink, then records that it is durable. Never throws.</summary>
    private async Task<Exception?> WriteAsync(IConsumer<byte[]?, byte[]?> consumer, InFlightFlush flush, CancellationToken cancellationToken)
    {
        try
        {
            await WriteSinksAsync(flush.Batch, cancellationToken);
            await DurableAsync(consumer, flush, cancellationToken);
            return null;
        }
#pragma warning disable CA1031 // handed to the consuming thread, which retries or stops
        catch (Exception e)
#pragma warning restore CA1031
        {
            return e;
        }
    }

    private async Task WriteSinksAsync(List<ConsumedEvent> batch, CancellationToken cancellationToken)
    {
        foreach (var sink in _sinks)
        {
            await sink.WriteAsync(batch, cancellationToken);
        }
    }

    /// <summary>
    /// Completes the batch in flight: waits for its write (polling the consumer with its partitions paused should it take
    /// long), retries it while it fails (exponential backoff, 100 ms doubling to 10 s, jittered, partitions paused), makes
    /// sure its dead letters are acknowledged, and commits its offsets.
    /// </summary>
    private async Task CompleteAsync(IConsumer<byte[]?, byte[]?> consumer, DeadLetterPublisher deadLetters, CancellationToken cancellationToken)
    {
        var flush = _inFlight!;
        var paused = new List<TopicPartition>();
        if (!flush.Written.IsCompleted)
        {
            try
            {
                await flush.Written.WaitAsync(NoPollWait, cancellationToken);
            }
            catch (TimeoutException)
            {
                HoldPaused(consumer, paused, TimeSpan.MaxValue, flush.Written, cancellationToken);
            }
        }

        var failure = await flush.Written;
        var written = failure is null;
        var delay = RetryBaseDelay;
        for (var attempt = 1; ; attempt++)
        {
            if (failure is not null)
            {
                if (failure is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException("stopping while a batch was written", failure, cancellationToken);
                }

                // Jitter (0.5–1.5×) so that instances of a group do not retry in lockstep.
#pragma warning disable CA5394 // not security-relevant
                var wait = TimeSpan.FromTicks((long)(delay.Ticks * (0.5 + Random.Shared.NextDouble())));
#pragma warning restore CA5394
                _metrics.FlushFailures.Add(1);
                flush.FlushSpan?.AddEvent(new ActivityEvent("flush failed", tags: new ActivityTagsCollection { ["attempt"] = attempt, ["error"] = failure.Message }));
                _health = new SpeedHealth(false, $"flush failing, retry {attempt}, consumption paused: {failure.Message}", _health.LastFlushAt);
                _logger.LogWarning("speed flush failed (attempt {Attempt}), retrying in {Delay}: {Error}", attempt, wait, failure.Message);
                HoldPaused(consumer, paused, wait, null, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, RetryMaxDelay.Ticks));
            }

            var current = Activity.Current;
            Activity.Current = flush.FlushSpan; // the retried inserts are the flush span's children
            try
            {
                await deadLetters.FlushAsync(cancellationToken);
                if (!written)
                {
                    await WriteSinksAsync(flush.Batch, cancellationToken);
                    written = true;
                    await DurableAsync(consumer, flush, cancellationToken);
                }

                break;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Also a timed-out request (an OperationCanceledException that is not the host stopping).
                failure = e;
            }
            finally
            {
                Activity.Current = current;
            }
        }

        if (paused.Count > 0)
        {
            try
            {
                // All of them, also those revoked meanwhile: librdkafka keeps a partition paused across a re-assignment.
                consumer.Resume(paused);
            }
            catch (KafkaException e)
            {
                _logger.LogWarning("resuming partitions after the flush failed: {Reason}", e.Error.Reason);
                consumer.Resume(consumer.Assignment);
            }
        }

        var beforeCommit = Activity.Current;
        using (var commitSpan = flush.Trace.StartCommit(flush.Positions.Count))
        {
            try
            {
                if (flush.Positions.Count > 0)
                {
                    consumer.Commit(flush.Positions.Select(p => new TopicPartitionOffset(_options.Topic, p.Key, p.Value)).ToList());
                }
            }
            catch (KafkaException e) when (!e.Error.IsFatal)
            {
                // E.g. during a rebalance: the records are delivered again and the idempotent sinks absorb them.
                commitSpan?.SetStatus(ActivityStatusCode.Error, e.Error.Reason);
                _logger.LogWarning("offset commit failed, records will be re-delivered: {Reason}", e.Error.Reason);
            }
        }

        Activity.Current = beforeCommit;
        flush.Trace.Done();
        _metrics.Flushes.Add(1);
        _inFlight = null;
        _metrics.SetBuffered(_batch.Count);
    }

    /// <summary>How long <see cref="CompleteAsync"/> waits for a write without polling the consumer (1 s) before it pauses the partitions and polls.</summary>
    private static readonly TimeSpan NoPollWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The batch is durable in every sink: ends its flush span, records its freshness, lag and progress, and counts it.
    /// Runs on the thread that wrote it.
    /// </summary>
    private async Task DurableAsync(IConsumer<byte[]?, byte[]?> consumer, InFlightFlush flush, CancellationToken cancellationToken)
    {
        flush.FlushSpan?.Dispose();
        var visibleAt = _clock.GetUtcNow().UtcDateTime;
        _metrics.FlushDuration.Record(_clock.GetElapsedTime(flush.HandedOffAt).TotalSeconds);
        var newestByPartition = new Dictionary<int, DateTime>();
        foreach (var c in flush.Batch)
        {
            _metrics.Freshness.Record((visibleAt - c.Event.Timestamp).TotalSeconds);
            ref var newest = ref CollectionsMarshal.GetValueRefOrAddDefault(newestByPartition, c.Partition, out var seen);
            if (!seen || c.Event.Timestamp > newest)
            {
                newest = c.Event.Timestamp;
            }
        }

        _metrics.Flushed(newestByPartition);

        // Consumer lag per partition: the broker's high watermark (from the last fetch) minus the next offset to read.
        var flushed = new List<PartitionFlush>(flush.Positions.Count);
        foreach (var (partition, next) in flush.Positions)
        {
            var watermarks = consumer.GetWatermarkOffsets(new TopicPartition(_options.Topic, partition));
            if (watermarks.High.Value >= 0)
            {
                _metrics.SetLag(partition, Math.Max(0, watermarks.High.Value - next));
            }

            flushed.Add(new PartitionFlush(_options.Topic, partition, next, newestByPartition.TryGetValue(partition, out var newest) ? newest : null,
                watermarks.High.Value >= 0 ? watermarks.High.Value : null, visibleAt));
        }

        if (_progress is not null)
        {
            try
            {
                await _progress.RecordAsync(_options.GroupId, flushed, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogWarning("recording speed progress failed (freshness readers see an older flush): {Error}", e.Message);
            }

            if (flush.Ingest is { } ingest)
            {
                try
                {
                    await _progress.RecordIngestAsync(ingest with { FlushedAt = visibleAt }, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _logger.LogWarning("recording the flush's records and dead letters failed (the operations page misses them): {Error}", e.Message);
                }
            }
        }

        Interlocked.Add(ref _eventsFlushed, flush.Batch.Count);
        _health = new SpeedHealth(true, "consuming", visibleAt);
    }

    /// <summary>Consume, riding out a failed fetch (connection dropped, request timed out): librdkafka fetches again from the same offset.</summary>
    private ConsumeResult<byte[]?, byte[]?>? TryConsume(IConsumer<byte[]?, byte[]?> consumer, TimeSpan timeout)
    {
        try
        {
            return consumer.Consume(timeout);
        }
        catch (ConsumeException e) when (!e.Error.IsFatal)
        {
            _logger.LogWarning("kafka: {Reason}", e.Error.Reason);
            return null;
        }
    }

    /// <summary>
    /// Waits <paramref name="wait"/>, or until <paramref name="until"/> completes, while polling the consumer with every
    /// assigned partition paused: librdkafka drops what it prefetched and fetches nothing more (memory stays bounded), the
    /// group keeps this member (<c>max.poll.interval.ms</c>) and rebalances are served. On resume, fetching restarts after
    /// the last record read.
    /// </summary>
    private void HoldPaused(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> paused, TimeSpan wait, Task? until, CancellationToken cancellationToken)
    {
        var end = wait == TimeSpan.MaxValue ? long.MaxValue : _clock.GetTimestamp() + (long)(wait.TotalSeconds * _clock.TimestampFrequency);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var unpaused = consumer.Assignment.Where(tp => !paused.Contains(tp)).ToList();
            if (unpaused.Count > 0)
            {
                consumer.Pause(unpaused);
                paused.AddRange(unpaused);
            }

            var remaining = end - _clock.GetTimestamp();
            if (remaining <= 0 || until is { IsCompleted: true })
            {
                return;
            }

            var timeout = remaining >= _clock.TimestampFrequency
                ? TimeSpan.FromMilliseconds(100)
                : TimeSpan.FromTicks(Math.Clamp(remaining * TimeSpan.TicksPerSecond / _clock.TimestampFrequency, 1, TimeSpan.TicksPerMillisecond * 100));
            if (TryConsume(consumer, timeout) is { IsPartitionEOF: false } record)
            {
                // From a partition assigned during the wait, before it was paused: read it again after the flush.
                consumer.Seek(record.TopicPartitionOffset);
                if (!paused.Contains(record.TopicPartition))
                {
                    consumer.Pause([record.TopicPartition]);
                    paused.Add(record.TopicPartition);
                }
            }
        }
    }
}

/// <summary>Health of a speed consumer.</summary>
/// <param name="Healthy">False while flushes fail or after a fatal Kafka error.</param>
/// <param name="Status">What it is doing, or why it is unhealthy.</param>
/// <param name="LastFlushAt">When the last flush became durable (UTC), or null.</param>
public sealed record SpeedHealth(bool Healthy, string Status, DateTime? LastFlushAt);
