using LambdaPlatform.Kafka;

namespace LambdaPlatform.Speed;

/// <summary>Settings of the speed layer's consumer. Validated at start-up; a bad value names itself.</summary>
public sealed record SpeedOptions
{
    /// <summary>Kafka bootstrap servers, e.g. <c>127.0.0.1:9092</c>. Required.</summary>
    public string BootstrapServers { get; init; } = string.Empty;

    /// <summary>Consumer group; instances with the same group share the partitions. Default <c>speed</c>.</summary>
    public string GroupId { get; init; } = "speed";

    /// <summary>Topic the events arrive on. Default <c>events</c>.</summary>
    public string Topic { get; init; } = Topics.Events;

    /// <summary>Topic invalid events go to, with their reason in headers. Default <c>events.dlq</c>.</summary>
    public string DeadLetterTopic { get; init; } = Topics.DeadLetter;

    /// <summary>Longest time between flushes to ClickHouse. Default 1 s; at most 1 s (the layer's promise).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Shortest time a batch is collected before it is handed off early because the consumer has caught up with the
    /// topic and no batch is being written. Bounds how often the sinks insert (each insert is a ClickHouse part): at most
    /// 1 / MinFlushInterval flushes per second and instance. Default 250 ms; above 0 and at most <see cref="FlushInterval"/>.
    /// </summary>
    public TimeSpan MinFlushInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Most events buffered before a flush is forced (bounds memory). Default 100,000.</summary>
    public int MaxBatchEvents { get; init; } = 100_000;

    /// <summary>
    /// Most kilobytes of records librdkafka prefetches into the consumer queue (<c>queued.max.messages.kbytes</c>).
    /// With <see cref="MaxBatchEvents"/> it bounds the memory of a running consumer; while a failed flush is retried
    /// its partitions are paused and the prefetched records dropped. Default 16,384 (16 MiB; librdkafka's own default
    /// is 64 MiB).
    /// </summary>
    public int MaxPrefetchKilobytes { get; init; } = 16_384;

    /// <summary>
    /// Longest time between two polls of the consumer before librdkafka leaves the group (<c>max.poll.interval.ms</c>).
    /// The consumer keeps polling (partitions paused) while a failed flush is retried, so only a single write hanging
    /// longer than this costs the membership. Default 5 minutes; at least 45 s (the client's session timeout).
    /// </summary>
    public TimeSpan MaxPollInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Throws when a setting is missing or out of range, naming it.</summary>
    public SpeedOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(BootstrapServers))
        {
            throw new ArgumentException("BootstrapServers is required (the Kafka bootstrap servers, e.g. 127.0.0.1:9092)", nameof(BootstrapServers));
        }

        if (string.IsNullOrWhiteSpace(GroupId))
        {
            throw new ArgumentException("GroupId must not be empty", nameof(GroupId));
        }

        if (FlushInterval <= TimeSpan.Zero || FlushInterval > TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), FlushInterval, "FlushInterval must be above 0 and at most 1 second");
        }

        if (MinFlushInterval <= TimeSpan.Zero || MinFlushInterval > FlushInterval)
        {
            throw new ArgumentOutOfRangeException(nameof(MinFlushInterval), MinFlushInterval, "MinFlushInterval must be above 0 and at most FlushInterval");
        }

        if (MaxBatchEvents <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchEvents), MaxBatchEvents, "MaxBatchEvents must be positive");
        }

        if (MaxPrefetchKilobytes is < 1 or > 2_097_151)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPrefetchKilobytes), MaxPrefetchKilobytes, "MaxPrefetchKilobytes must be between 1 and 2,097,151");
        }

        if (MaxPollInterval < TimeSpan.FromSeconds(45) || MaxPollInterval > TimeSpan.FromHours(24))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPollInterval), MaxPollInterval, "MaxPollInterval must be between 45 seconds and 24 hours");
        }

        return this;
    }
}
