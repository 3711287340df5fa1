using System.Diagnostics;
using System.Text.Json;
using Confluent.Kafka;
using LambdaPlatform.Kafka;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>
/// Sends raw event JSON to the events topic keyed by its <c>userId</c> (found with a light scan, not a
/// validation: invalid events are sent too, so the speed layer can dead-letter them with a reason
/// instead of losing them at the edge). Idempotent producer, acks=all. Thread-safe.
/// </summary>
/// <remarks>
/// While a span is current (<see cref="Activity.Current"/>, e.g. one of <see cref="KafkaTracing.ProducerSource"/> per batch of
/// records), each record carries its <c>traceparent</c> header, so the speed layer's flush span links to the producer's trace.
/// </remarks>
public sealed class EventProducer : IDisposable
{
    private readonly IProducer<byte[]?, byte[]> _producer;
    private readonly string _topic;
    private long _delivered;
    private long _failed;
    private string? _lastError;

    /// <summary>Creates a producer for <paramref name="bootstrapServers"/>.</summary>
    public EventProducer(string bootstrapServers, string topic = Topics.Events)
    {
        _producer = new ProducerBuilder<byte[]?, byte[]>(KafkaDefaults.ProducerConfig(bootstrapServers)).Build();
        _topic = topic;
    }

    /// <summary>Events acknowledged by Kafka so far.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Events Kafka refused so far.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>The last delivery error, if any.</summary>
    public string? LastError => _lastError;

    /// <summary>Queues one event. Blocks briefly when the local queue is full.</summary>
    public void Send(byte[] json)
    {
        while (true)
        {
            try
            {
                _producer.Produce(_topic, new Message<byte[]?, byte[]> { Key = FindUserId(json), Value = json, Headers = TraceHeaders() }, OnDelivery);
                return;
            }
            catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                _producer.Poll(TimeSpan.FromMilliseconds(50));
            }
        }
    }

    /// <summary>The <c>traceparent</c> of the current span, one <see cref="Headers"/> shared by its records (librdkafka copies them), or null.</summary>
    private Headers? TraceHeaders()
    {
        var current = Activity.Current;
        if (current is null)
        {
            return null;
        }

        var cached = _traceHeaders;
        if (cached is not null && ReferenceEquals(cached.Value.Activity, current))
        {
            return cached.Value.Headers;
        }

        var headers = KafkaTracing.Inject(current, null);
        _traceHeaders = (current, headers);
        return headers;
    }

    private (Activity Activity, Headers? Headers)? _traceHeaders;

    /// <summary>Waits until every queued event is acknowledged or failed.</summary>
    public void Flush(CancellationToken cancellationToken = default) => _producer.Flush(cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        _producer.Flush(TimeSpan.FromSeconds(10));
        _producer.Dispose();
    }

    private void OnDelivery(DeliveryReport<byte[]?, byte[]> report)
    {
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _failed);
            _lastError = report.Error.Reason;
        }
        else
        {
            Interlocked.Increment(ref _delivered);
        }
    }

    /// <summary>The top-level <c>userId</c> string as UTF-8 bytes, or null when there is none or the JSON is broken.</summary>
    public static byte[]? FindUserId(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isUserId = reader.ValueTextEquals("userId"u8);
                reader.Read();
                if (isUserId)
                {
                    return reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped ? reader.ValueSpan.ToArray() : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
            // Broken JSON still goes to Kafka (unkeyed) so the speed layer dead-letters it with a reason.
        }

        return null;
    }
}
