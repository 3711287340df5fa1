using System.Diagnostics;
using Confluent.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace LambdaPlatform.Speed;

/// <summary>
/// The speed layer's consumer (group <see cref="SpeedOptions.GroupId"/>): reads the events topic,
/// decodes and validates each record, sends invalid ones to the dead-letter topic with their reason,
/// writes valid ones in batches to every <see cref="IEventSink"/> at least once per
/// <see cref="SpeedOptions.FlushInterval"/>, and commits offsets only after the batch is durable. A
/// failed flush is retried with exponential backoff (100 ms doubling to 10 s, jittered) while the offsets are held
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

    /// <summary>Total valid events flushed so far by this instance.</summary>
    public long EventsFlushed => Interlocked.Read(ref _eventsFlushed);

    private long _eventsFlushed;
    private readonly IngestTally _tally = new();
    private readonly BatchTrace _trace = new();
    private readonly List<ConsumedEvent> _batch = [];
    private readonly Dictionary<TopicPartition, TopicPartitionOffset> _positions = [];

    private void Forget(IEnumerable<TopicPartition> partitions)
    {
        foreach (var tp in partitions)
        {
            _positions.Remove(tp);
            _batch.RemoveAll(c => c.Partition == tp.Partition.Value);
        }

        _metrics.Unassigned(partitions.Select(tp => tp.Partition.Value));
        _metrics.SetBuffered(_batch.Count);
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
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) =>
            {
                if (e.IsFatal)
                {
                    _health = new SpeedHealth(false, "fatal Kafka error: " + e.Reason, _health.LastFlushAt);
                }

                _logger.LogWarning("kafka: {Reason}", e.Reason);
            })
            // Records of partitions this instance no longer owns are dropped, not flushed: the new owner reads
            // them again from the last commit, and (KIP-848) gets the partition only after this returns.
            .SetLogHandler(Kafka.KafkaLogs.Handler<byte[]?, byte[]?>(_logger, reset =>
                _metrics.Skipped.Add(reset.Skipped, new KeyValuePair<string, object?>("partition", reset.Partition))))
            .SetPartitionsAssignedHandler((_, assigned) => _metrics.Assigned(assigned.Select(p => p.Partition.Value)))
            .SetPartitionsRevokedHandler((_, revoked) => Forget(revoked.Select(p => p.TopicPartition)))
            .SetPartitionsLostHandler((_, lost) => Forget(lost.Select(p => p.TopicPartition)))
            .Build();
        using var deadLetters = new DeadLetterPublisher(KafkaDefaults.ProducerConfig(_options.BootstrapServers), _options.DeadLetterTopic);
        var decoder = new EventDecoder(_schemas, _decoderOptions);
        consumer.Subscribe(_options.Topic);
        _health = new SpeedHealth(true, "consuming", null);

        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var flushAt = _clock.GetTimestamp() + (long)(_options.FlushInterval.TotalSeconds * Stopwatch.Frequency);
                while (_batch.Count < _options.MaxBatchEvents)
                {
                    var remaining = flushAt - _clock.GetTimestamp();
                    if (remaining <= 0)
                    {
                        break;
                    }

                    var record = TryConsume(consumer, TimeSpan.FromTicks(Math.Max(1, remaining * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
                    if (record is null || record.IsPartitionEOF)
                    {
                        continue;
                    }

                    _trace.Read(record);
                    _tally.Read();
                    _metrics.EventsIn.Add(1, new KeyValuePair<string, object?>("partition", record.Partition.Value));
                    _positions[record.TopicPartition] = new TopicPartitionOffset(record.TopicPartition, record.Offset + 1);
                    Schemas.Validation.Violation? violation;
                    if (record.Message.Value is not { } value)
                    {
                        violation = new Schemas.Validation.Violation("json", "empty message (null value)");
                    }
                    else if (decoder.TryDecode(value, out var decoded, out violation))
                    {
                        _batch.Add(new ConsumedEvent(decoded!, record.Partition.Value, record.Offset.Value));
                        _metrics.SetBuffered(_batch.Count);
                        continue;
                    }

                    _metrics.Invalid.Add(1, new KeyValuePair<string, object?>("rule", violation!.Rule), new KeyValuePair<string, object?>("partition", record.Partition.Value));
                    _trace.DeadLettered();
                    _tally.DeadLettered(record, violation);
                    deadLetters.Publish(record, violation);
                }

                if (_positions.Count > 0)
                {
                    _trace.Consumed(_batch.Count);
                    try
                    {
                        await FlushAsync(consumer, deadLetters, _batch, _positions, stoppingToken);
                    }
                    finally
                    {
                        _trace.Done();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: what was read but not flushed is not committed, and will be read again.
        }
        finally
        {
            consumer.Close();
            _metrics.SetBuffered(0);
        }
    }

    private async Task FlushAsync(IConsumer<byte[]?, byte[]?> consumer, DeadLetterPublisher deadLetters, List<ConsumedEvent> batch,
        Dictionary<TopicPartition, TopicPartitionOffset> positions, CancellationToken cancellationToken)
    {
        var started = _clock.GetTimestamp();
        var paused = new List<TopicPartition>();
        var delay = RetryBaseDelay;
        var flushSpan = _trace.StartFlush(batch.Count);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await deadLetters.FlushAsync(cancellationToken);
                foreach (var sink in _sinks)
                {
                    await sink.WriteAsync(batch, cancellationToken);
                }

                break;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Jitter (0.5–1.5×) so that instances of a group do not retry in lockstep.
#pragma warning disable CA5394 // not security-relevant
                var wait = TimeSpan.FromTicks((long)(delay.Ticks * (0.5 + Random.Shared.NextDouble())));
#pragma warning restore CA5394
                _metrics.FlushFailures.Add(1);
                flushSpan?.AddEvent(new ActivityEvent("flush failed", tags: new ActivityTagsCollection { ["attempt"] = attempt, ["error"] = e.Message }));
                _health = new SpeedHealth(false, $"flush failing, retry {attempt}, consumption paused: {e.Message}", _health.LastFlushAt);
                _logger.LogWarning("speed flush failed (attempt {Attempt}), retrying in {Delay}: {Error}", attempt, wait, e.Message);
                HoldPaused(consumer, paused, wait, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, RetryMaxDelay.Ticks));
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

        flushSpan?.Dispose();
        var visibleAt = _clock.GetUtcNow().UtcDateTime;
        _metrics.FlushDuration.Record(_clock.GetElapsedTime(started).TotalSeconds);
        foreach (var c in batch)
        {
            _metrics.Freshness.Record((visibleAt - c.Event.Timestamp).TotalSeconds);
        }

        // Consumer lag per partition: the broker's high watermark (from the last fetch) minus the next offset to read.
        var newestByPartition = new Dictionary<int, DateTime>();
        foreach (var c in batch)
        {
            if (!newestByPartition.TryGetValue(c.Partition, out var seen) || c.Event.Timestamp > seen)
            {
                newestByPartition[c.Partition] = c.Event.Timestamp;
            }
        }

        var flushed = new List<PartitionFlush>(positions.Count);
        foreach (var position in positions.Values)
        {
            var watermarks = consumer.GetWatermarkOffsets(position.TopicPartition);
            if (watermarks.High.Value >= 0)
            {
                _metrics.SetLag(position.Partition.Value, Math.Max(0, watermarks.High.Value - position.Offset.Value));
            }

            flushed.Add(new PartitionFlush(position.Topic, position.Partition.Value, position.Offset.Value,
                newestByPartition.TryGetValue(position.Partition.Value, out var newest) ? newest : null, watermarks.High.Value >= 0 ? watermarks.High.Value : null, visibleAt));
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

            if (_tally.Take(_options.GroupId, visibleAt) is { } ingest)
            {
                try
                {
                    await _progress.RecordIngestAsync(ingest, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _logger.LogWarning("recording the flush's records and dead letters failed (the operations page misses them): {Error}", e.Message);
                }
            }
        }

        using var commitSpan = SpeedTracing.Source.StartActivity("speed.commit");
        commitSpan?.SetTag("lambda.speed.partitions", positions.Count);
        try
        {
            consumer.Commit(positions.Values);
        }
        catch (KafkaException e) when (!e.Error.IsFatal)
        {
            // E.g. during a rebalance: the records are delivered again and the idempotent sinks absorb them.
            commitSpan?.SetStatus(ActivityStatusCode.Error, e.Error.Reason);
            _logger.LogWarning("offset commit failed, records will be re-delivered: {Reason}", e.Error.Reason);
        }

        commitSpan?.Dispose();

        _metrics.Flushes.Add(1);
        _metrics.Flushed(batch);
        Interlocked.Add(ref _eventsFlushed, batch.Count);
        _health = new SpeedHealth(true, "consuming", visibleAt);
        batch.Clear();
        positions.Clear();
        _metrics.SetBuffered(0);
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
    /// Waits <paramref name="wait"/> while polling the consumer with every assigned partition paused: librdkafka drops
    /// what it prefetched and fetches nothing more (memory stays bounded), the group keeps this member
    /// (<c>max.poll.interval.ms</c>) and rebalances are served. On resume, fetching restarts after the last record read.
    /// </summary>
    private void HoldPaused(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> paused, TimeSpan wait, CancellationToken cancellationToken)
    {
        var until = _clock.GetTimestamp() + (long)(wait.TotalSeconds * _clock.TimestampFrequency);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var unpaused = consumer.Assignment.Where(tp => !paused.Contains(tp)).ToList();
            if (unpaused.Count > 0)
            {
                consumer.Pause(unpaused);
                paused.AddRange(unpaused);
            }

            var remaining = until - _clock.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }

            var timeout = TimeSpan.FromTicks(Math.Clamp(remaining * TimeSpan.TicksPerSecond / _clock.TimestampFrequency, 1, TimeSpan.TicksPerMillisecond * 100));
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
