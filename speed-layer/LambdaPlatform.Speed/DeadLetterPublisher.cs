using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Speed;

/// <summary>
/// Sends rejected records to the dead-letter topic with why in headers: <c>reason</c> (one line: path, message,
/// rule), <c>rule</c>, <c>path</c>, and where the record came from (<c>source.topic</c>, <c>source.partition</c>,
/// <c>source.offset</c>). The original headers follow as <c>original.&lt;name&gt;</c> while they fit.
/// Nothing is dropped silently: a record whose delivery failed is sent again by the next
/// <see cref="FlushAsync"/>, which fails until every record is acknowledged, so offsets are not committed past a
/// lost record.
/// </summary>
/// <remarks>
/// <para>Size: a dead-letter record never exceeds the producer's <c>message.max.bytes</c> (default 1,000,000, the
/// same as a Kafka broker's default limit), so a hostile 10 MB message cannot make the dead-letter topic refuse it
/// (which would stall the speed layer) or fill a broker partition. A value longer than <see cref="MaxValueBytes"/>
/// keeps its first <see cref="MaxValueBytes"/> bytes; a key longer than <see cref="MaxKeyBytes"/> keeps its first
/// <see cref="MaxKeyBytes"/> bytes; header <c>truncated</c> then says what was cut (<c>value</c>, <c>key</c> or
/// <c>value,key</c>), and <c>original.value.size</c> / <c>original.value.sha256</c> (and the same for the key)
/// identify the whole original, which stays at its source offset. <c>reason</c> is cut to
/// <see cref="MaxReasonBytes"/> bytes (a violation may quote hostile input).</para>
/// <para>Threading: <see cref="Publish"/> and <see cref="FlushAsync"/> are called from the consuming thread;
/// delivery reports arrive on the producer's poll thread.</para>
/// </remarks>
public sealed class DeadLetterPublisher : IDisposable
{
    /// <summary>Longest key kept whole, in bytes (4 KiB); longer keys are cut.</summary>
    public const int MaxKeyBytes = 4 * 1024;

    /// <summary>Longest <c>reason</c> and <c>path</c> header, in bytes (1 KiB); longer ones are cut.</summary>
    public const int MaxReasonBytes = 1024;

    /// <summary>Room for the original headers, in bytes (16 KiB); headers beyond it are left out and counted in <c>original.headers.dropped</c>.</summary>
    public const int MaxOriginalHeaderBytes = 16 * 1024;

    /// <summary>Room kept for key, headers and record framing below <c>message.max.bytes</c>.</summary>
    private const int Overhead = 64 * 1024;

    private readonly ProducerConfig _config;
    private readonly string _topic;
    private readonly ConcurrentQueue<Message<byte[]?, byte[]?>> _failed = new();
    private readonly ManualResetEventSlim _delivered = new(false);
    private IProducer<byte[]?, byte[]?> _producer;
    private int _pending;
    private Error? _firstError;

    /// <summary>Creates a publisher with its own producer (<paramref name="config"/>, e.g. idempotent).</summary>
    public DeadLetterPublisher(ProducerConfig config, string topic)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _topic = topic;
        MaxValueBytes = Math.Max(1024, (config.MessageMaxBytes ?? 1_000_000) - Overhead);
        _producer = new ProducerBuilder<byte[]?, byte[]?>(config).Build();
    }

    /// <summary>Longest value kept whole, in bytes: the producer's <c>message.max.bytes</c> minus 64 KiB (936,000 by default).</summary>
    public int MaxValueBytes { get; }

    /// <summary>Records queued and not yet acknowledged or failed.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Queues one rejected record. Waits (bounded memory) while the producer's queue is full.</summary>
    public void Publish(ConsumeResult<byte[]?, byte[]?> record, Violation violation)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(violation);
        Send(Build(record, violation, MaxValueBytes));
    }

    /// <summary>
    /// Whether every record published so far is acknowledged and none failed: what <see cref="FlushAsync"/> would confirm,
    /// without waiting. Consuming thread.
    /// </summary>
    public bool IsSettled => Volatile.Read(ref _pending) == 0 && _failed.IsEmpty && Volatile.Read(ref _firstError) is null;

    /// <summary>The dead-letter record for <paramref name="record"/>: value and key capped, reason and origin in headers.</summary>
    /// <param name="record">The rejected record.</param>
    /// <param name="violation">Why it was rejected.</param>
    /// <param name="maxValueBytes">Longest value kept whole.</param>
    public static Message<byte[]?, byte[]?> Build(ConsumeResult<byte[]?, byte[]?> record, Violation violation, int maxValueBytes)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(violation);
        var value = record.Message.Value;
        var key = record.Message.Key;
        var headers = new Headers
        {
            { "reason", Cut(violation.ToString(), MaxReasonBytes) },
            { "rule", Cut(violation.Rule, MaxReasonBytes) },
            { "path", Cut(violation.Path, MaxReasonBytes) },
            { "source.topic", Encoding.UTF8.GetBytes(record.Topic ?? string.Empty) },
            { "source.partition", Encoding.UTF8.GetBytes(record.Partition.Value.ToString(CultureInfo.InvariantCulture)) },
            { "source.offset", Encoding.UTF8.GetBytes(record.Offset.Value.ToString(CultureInfo.InvariantCulture)) },
        };

        var truncated = new List<string>(2);
        if (value is not null && value.Length > maxValueBytes)
        {
            headers.Add("original.value.size", Encoding.UTF8.GetBytes(value.Length.ToString(CultureInfo.InvariantCulture)));
            headers.Add("original.value.sha256", Encoding.UTF8.GetBytes(Convert.ToHexStringLower(SHA256.HashData(value))));
            value = value[..maxValueBytes];
            truncated.Add("value");
        }

        if (key is not null && key.Length > MaxKeyBytes)
        {
            headers.Add("original.key.size", Encoding.UTF8.GetBytes(key.Length.ToString(CultureInfo.InvariantCulture)));
            headers.Add("original.key.sha256", Encoding.UTF8.GetBytes(Convert.ToHexStringLower(SHA256.HashData(key))));
            key = key[..MaxKeyBytes];
            truncated.Add("key");
        }

        if (truncated.Count > 0)
        {
            headers.Add("truncated", Encoding.UTF8.GetBytes(string.Join(',', truncated)));
        }

        if (record.Message.Headers is { Count: > 0 } original)
        {
            var room = MaxOriginalHeaderBytes;
            var dropped = 0;
            foreach (var header in original)
            {
                var bytes = header.GetValueBytes();
                var size = header.Key.Length + (bytes?.Length ?? 0) + 9;
                if (size > room)
                {
                    dropped++;
                    continue;
                }

                room -= size;
                headers.Add("original." + header.Key, bytes);
            }

            if (dropped > 0)
            {
                headers.Add("original.headers.dropped", Encoding.UTF8.GetBytes(dropped.ToString(CultureInfo.InvariantCulture)));
            }
        }

        return new Message<byte[]?, byte[]?> { Key = key, Value = value, Headers = headers };
    }

    /// <summary>Waits until every queued record is acknowledged by Kafka, sending failed ones again first.</summary>
    /// <exception cref="KafkaException">A record could not be delivered (it is kept and sent again next time); do not commit past it.</exception>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _firstError) is { IsFatal: true })
        {
            // An idempotent producer cannot go on after a fatal error; a new one resends what failed.
            var old = _producer;
            _producer = new ProducerBuilder<byte[]?, byte[]?>(_config).Build();
            old.Dispose();
        }

        var retries = _failed.Count;
        Interlocked.Exchange(ref _firstError, null);
        for (var i = 0; i < retries && _failed.TryDequeue(out var message); i++)
        {
            Send(message);
        }

        while (Volatile.Read(ref _pending) > 0)
        {
            await Task.Delay(2, cancellationToken);
        }

        var error = Interlocked.Exchange(ref _firstError, null);
        if (error is not null)
        {
            throw new KafkaException(error);
        }
    }

    private void Send(Message<byte[]?, byte[]?> message)
    {
        while (true)
        {
            _delivered.Reset();
            Interlocked.Increment(ref _pending);
            try
            {
                _producer.Produce(_topic, message, report =>
                {
                    if (report.Error.IsError)
                    {
                        _failed.Enqueue(message);
                        Interlocked.CompareExchange(ref _firstError, report.Error, null);
                    }

                    Interlocked.Decrement(ref _pending);
                    _delivered.Set();
                });
                return;
            }
            catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                // Back-pressure: wait for deliveries instead of buffering without bound.
                Interlocked.Decrement(ref _pending);
                _delivered.Wait(TimeSpan.FromMilliseconds(100));
            }
            catch (ProduceException<byte[]?, byte[]?> e)
            {
                // Refused before it was queued (e.g. a fatal producer error): keep it for the next flush.
                Interlocked.Decrement(ref _pending);
                _failed.Enqueue(message);
                Interlocked.CompareExchange(ref _firstError, e.Error, null);
                return;
            }
        }
    }

    private static byte[] Cut(string text, int maxBytes)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length <= maxBytes)
        {
            return bytes;
        }

        // Cut at a character boundary, and say so.
        var end = maxBytes - 3;
        while (end > 0 && (bytes[end] & 0xC0) == 0x80)
        {
            end--;
        }

        return [.. bytes.AsSpan(0, end), .. "..."u8];
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _producer.Flush(TimeSpan.FromSeconds(5));
        _producer.Dispose();
        _delivered.Dispose();
    }
}
