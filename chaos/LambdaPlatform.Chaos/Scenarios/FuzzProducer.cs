using System.Collections.Concurrent;
using Confluent.Kafka;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The fuzz scenario's producer: the platform's producer settings with <c>message.max.bytes</c> raised to
/// <see cref="MaxMessageBytes"/> so 10 MB values, keys and headers reach the broker. From each delivery report it
/// records valid events into <see cref="ExpectedViews"/> and hostile records by (partition, offset), so the
/// dead-letter topic can be checked record by record.
/// </summary>
internal sealed class FuzzProducer : IDisposable
{
    /// <summary>Largest record this producer sends (16 MiB).</summary>
    public const int MaxMessageBytes = 16 * 1024 * 1024;

    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly string _topic;
    private readonly ManualResetEventSlim _delivered = new(false);
    private readonly ConcurrentDictionary<(int Partition, long Offset), string> _hostile = new();
    private long _failed;
    private long _pending;
    private string? _lastError;

    public FuzzProducer(string bootstrapServers, string topic, ExpectedViews expected)
    {
        Expected = expected;
        _topic = topic;
        var config = KafkaDefaults.ProducerConfig(bootstrapServers);
        config.MessageMaxBytes = MaxMessageBytes;
        _producer = new ProducerBuilder<byte[]?, byte[]?>(config).Build();
    }

    public ExpectedViews Expected { get; }

    /// <summary>Hostile records acknowledged, by (partition, offset), with their kind.</summary>
    public IReadOnlyDictionary<(int Partition, long Offset), string> Hostile => _hostile;

    public long Failed => Interlocked.Read(ref _failed);

    public string? LastError => _lastError;

    /// <summary>Sends a valid event to <paramref name="partition"/>; counted in <see cref="Expected"/> once acknowledged.</summary>
    public void SendValid(GeneratedEvent e, int partition, byte[]? key, Headers? headers = null) =>
        Produce(partition, new Message<byte[]?, byte[]?> { Key = key, Value = e.Json, Headers = headers }, _ => Expected.Add(e));

    /// <summary>Sends a hostile record to <paramref name="partition"/>; returns a task that completes with its offset once acknowledged.</summary>
    public Task<long> SendHostile(HostileMessage m, int partition)
    {
        var acked = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Produce(partition, new Message<byte[]?, byte[]?> { Key = m.Key, Value = m.Value, Headers = m.Headers }, report =>
        {
            _hostile[(report.Partition.Value, report.Offset.Value)] = m.Kind;
            acked.TrySetResult(report.Offset.Value);
        }, error => acked.TrySetException(new KafkaException(error)));
        return acked.Task;
    }

    private void Produce(int partition, Message<byte[]?, byte[]?> message, Action<DeliveryReport<byte[]?, byte[]?>> delivered, Action<Error>? failed = null)
    {
        while (true)
        {
            _delivered.Reset();
            try
            {
                Interlocked.Increment(ref _pending);
                _producer.Produce(new TopicPartition(_topic, partition), message, report =>
                {
                    if (report.Error.IsError)
                    {
                        Interlocked.Increment(ref _failed);
                        _lastError = report.Error.Reason;
                        failed?.Invoke(report.Error);
                    }
                    else
                    {
                        delivered(report);
                    }

                    Interlocked.Decrement(ref _pending);
                    _delivered.Set();
                });
                return;
            }
            catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                Interlocked.Decrement(ref _pending);
                _delivered.Wait(TimeSpan.FromMilliseconds(100)); // back-pressure: wait for deliveries
            }
        }
    }

    /// <summary>Waits until every record is acknowledged or failed.</summary>
    public void Flush(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var left = _producer.Flush(timeout);
        while (left == 0 && Interlocked.Read(ref _pending) > 0 && DateTime.UtcNow < deadline)
        {
            _delivered.Wait(TimeSpan.FromMilliseconds(50)); // the last delivery reports may still be running
        }

        if (left > 0 || Interlocked.Read(ref _pending) > 0)
        {
            throw new TimeoutException($"{Interlocked.Read(ref _pending)} records still undelivered after {timeout}");
        }
    }

    public void Dispose()
    {
        _producer.Dispose();
        _delivered.Dispose();
    }
}
