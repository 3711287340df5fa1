using System.Globalization;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Speed;

/// <summary>
/// Sends rejected records to the dead-letter topic unchanged, with why in headers: <c>reason</c>
/// (one line: path, message, rule), <c>rule</c>, <c>path</c>, and where the record came from
/// (<c>source.topic</c>, <c>source.partition</c>, <c>source.offset</c>). Nothing is dropped silently:
/// <see cref="FlushAsync"/> fails if any send failed, so offsets are not committed past a lost record.
/// </summary>
public sealed class DeadLetterPublisher : IDisposable
{
    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly string _topic;
    private int _pending;
    private Error? _firstError;

    /// <summary>Creates a publisher with its own idempotent producer.</summary>
    public DeadLetterPublisher(ProducerConfig config, string topic)
    {
        _producer = new ProducerBuilder<byte[]?, byte[]?>(config).Build();
        _topic = topic;
    }

    /// <summary>Queues one rejected record. Thread-safe.</summary>
    public void Publish(ConsumeResult<byte[]?, byte[]?> record, Violation violation)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(violation);
        var headers = new Headers
        {
            { "reason", Encoding.UTF8.GetBytes(violation.ToString()) },
            { "rule", Encoding.UTF8.GetBytes(violation.Rule) },
            { "path", Encoding.UTF8.GetBytes(violation.Path) },
            { "source.topic", Encoding.UTF8.GetBytes(record.Topic) },
            { "source.partition", Encoding.UTF8.GetBytes(record.Partition.Value.ToString(CultureInfo.InvariantCulture)) },
            { "source.offset", Encoding.UTF8.GetBytes(record.Offset.Value.ToString(CultureInfo.InvariantCulture)) },
        };
        Interlocked.Increment(ref _pending);
        _producer.Produce(_topic, new Message<byte[]?, byte[]?> { Key = record.Message.Key, Value = record.Message.Value, Headers = headers }, report =>
        {
            if (report.Error.IsError)
            {
                Interlocked.CompareExchange(ref _firstError, report.Error, null);
            }

            Interlocked.Decrement(ref _pending);
        });
    }

    /// <summary>Waits until every queued record is acknowledged by Kafka.</summary>
    /// <exception cref="KafkaException">A record could not be delivered; do not commit past it.</exception>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        while (Volatile.Read(ref _pending) > 0)
        {
            _producer.Poll(TimeSpan.FromMilliseconds(10));
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Yield();
        }

        var error = Interlocked.Exchange(ref _firstError, null);
        if (error is not null)
        {
            throw new KafkaException(error);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _producer.Flush(TimeSpan.FromSeconds(5));
        _producer.Dispose();
    }
}
