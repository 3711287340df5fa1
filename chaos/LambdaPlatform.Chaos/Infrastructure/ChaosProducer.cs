using Confluent.Kafka;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>
/// The platform's own producer settings (idempotent, <c>acks=all</c>) sending generated events, and recording
/// from each delivery report what the exact answer needs: the event (into <see cref="ExpectedViews"/>) and its
/// (partition, offset). Raw bytes can be sent too (hostile input), tracked separately.
/// </summary>
public sealed class ChaosProducer : IDisposable
{
    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly string _topic;
    private readonly OffsetSet _validOffsets = new();
    private long _failed;
    private long _clientErrors;
    private long _rawDelivered;
    private string? _lastError;

    /// <summary>Creates a producer for <paramref name="topic"/> on <paramref name="bootstrapServers"/>.</summary>
    public ChaosProducer(string bootstrapServers, ExpectedViews expected, string topic = Topics.Events, Action<ProducerConfig>? configure = null)
    {
        Expected = expected;
        _topic = topic;
        var config = KafkaDefaults.ProducerConfig(bootstrapServers);
        configure?.Invoke(config);
        _producer = new ProducerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) =>
            {
                // Connection refused, all brokers down, request timed out…: the client saw the fault (it retries).
                Interlocked.Increment(ref _clientErrors);
                _lastError = e.Reason;
            })
            .Build();
    }

    /// <summary>Errors the producer client reported (non-fatal ones are retried internally): how often a fault reached it.</summary>
    public long ClientErrors => Interlocked.Read(ref _clientErrors);

    /// <summary>The exact answer so far.</summary>
    public ExpectedViews Expected { get; }

    /// <summary>Deliveries that failed (the event is not in <see cref="Expected"/>).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Raw (hostile) messages delivered.</summary>
    public long RawDelivered => Interlocked.Read(ref _rawDelivered);

    /// <summary>The last delivery error, if any.</summary>
    public string? LastError => _lastError;

    /// <summary>(partition, offset) of every valid event delivered (a snapshot).</summary>
    public OffsetSet ValidOffsets => _validOffsets.Snapshot();

    /// <summary>Sends a valid event; counted in <see cref="Expected"/> once acknowledged.</summary>
    public void Send(GeneratedEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        Send(e.Json, EventFacts.Of(e));
    }

    /// <summary>Sends a valid event's JSON; <paramref name="facts"/> are counted in <see cref="Expected"/> once acknowledged.</summary>
    public void Send(byte[] json, EventFacts facts)
    {
        Produce(new Message<byte[]?, byte[]?> { Key = null, Value = json }, report =>
        {
            Expected.Add(facts);
            _validOffsets.Add(report.Partition.Value, report.Offset.Value);
        });
    }

    /// <summary>Sends raw bytes (not expected in any view).</summary>
    public void SendRaw(byte[]? value, Headers? headers = null) => SendRaw(value, headers, null);

    /// <summary>Sends raw bytes (not expected in any view); <paramref name="delivered"/> gets where each landed.</summary>
    public void SendRaw(byte[]? value, Headers? headers, Action<int, long>? delivered) =>
        Produce(new Message<byte[]?, byte[]?> { Value = value, Headers = headers }, report =>
        {
            Interlocked.Increment(ref _rawDelivered);
            delivered?.Invoke(report.Partition.Value, report.Offset.Value);
        });

    private void Produce(Message<byte[]?, byte[]?> message, Action<DeliveryReport<byte[]?, byte[]?>> delivered)
    {
        while (true)
        {
            try
            {
                _producer.Produce(_topic, message, report =>
                {
                    if (report.Error.IsError)
                    {
                        Interlocked.Increment(ref _failed);
                        _lastError = report.Error.Reason;
                    }
                    else
                    {
                        delivered(report);
                    }
                });
                return;
            }
            catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                _producer.Poll(TimeSpan.FromMilliseconds(50)); // back-pressure: wait for deliveries
            }
        }
    }

    /// <summary>Waits until every message is acknowledged or failed.</summary>
    public void Flush(TimeSpan timeout)
    {
        if (_producer.Flush(timeout) > 0)
        {
            throw new TimeoutException($"{_producer.Flush(TimeSpan.Zero)} messages still undelivered after {timeout}");
        }
    }

    /// <inheritdoc />
    public void Dispose() => _producer.Dispose();
}
