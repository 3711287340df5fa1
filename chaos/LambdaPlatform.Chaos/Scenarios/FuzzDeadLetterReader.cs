using System.Globalization;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Kafka;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// Reads the dead-letter topic from offset 0 of every partition while the scenario runs, and records which source
/// (partition, offset) each dead letter names and whether it carries a reason. It never skips: with
/// <c>auto.offset.reset=error</c> a record the broker dropped before it was read shows up as a gap, not as silence.
/// </summary>
internal sealed class FuzzDeadLetterReader : IAsyncDisposable
{
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly Lock _lock = new();
    private readonly Dictionary<(int Partition, long Offset), int> _seen = [];
    private readonly Dictionary<(int Partition, long Offset), string> _reasons = [];
    private readonly List<string> _problems = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _records;
    private long _withoutReason;
    private long _truncated;
    private long _largestValue;

    public FuzzDeadLetterReader(string bootstrapServers, string topic, int partitions)
    {
        var config = KafkaDefaults.ConsumerConfig(bootstrapServers, "fuzz-dlq-reader-" + Guid.NewGuid().ToString("N")[..8]);
        config.AutoOffsetReset = AutoOffsetReset.Error;
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        _consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, 0)));
        _loop = Task.Factory.StartNew(Run, _stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Dead letters read.</summary>
    public long Records => Interlocked.Read(ref _records);

    /// <summary>Dead letters without a non-empty <c>reason</c> header.</summary>
    public long WithoutReason => Interlocked.Read(ref _withoutReason);

    /// <summary>Dead letters with a <c>truncated</c> header.</summary>
    public long Truncated => Interlocked.Read(ref _truncated);

    /// <summary>Largest dead-letter value, in bytes.</summary>
    public long LargestValue => Interlocked.Read(ref _largestValue);

    /// <summary>How often each source (partition, offset) was dead-lettered so far.</summary>
    public Dictionary<(int Partition, long Offset), int> Seen()
    {
        lock (_lock)
        {
            return new Dictionary<(int, long), int>(_seen);
        }
    }

    /// <summary>The reason header of the last dead letter of each source (partition, offset).</summary>
    public Dictionary<(int Partition, long Offset), string> Reasons()
    {
        lock (_lock)
        {
            return new Dictionary<(int, long), string>(_reasons);
        }
    }

    /// <summary>Gaps and malformed dead letters, for the log.</summary>
    public IReadOnlyList<string> Problems()
    {
        lock (_lock)
        {
            return [.. _problems];
        }
    }

    /// <summary>Polls until <paramref name="done"/> holds or <paramref name="timeout"/> passes.</summary>
    public async Task<bool> WaitAsync(Func<FuzzDeadLetterReader, bool> done, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (done(this))
            {
                return true;
            }

            await Task.Delay(250, cancellationToken);
        }

        return done(this);
    }

    private void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            ConsumeResult<byte[]?, byte[]?>? record;
            try
            {
                record = _consumer.Consume(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ConsumeException e)
            {
                Problem($"dead-letter topic: {e.Error.Code}: {e.Error.Reason} at {e.ConsumerRecord?.TopicPartitionOffset}");
                continue;
            }

            if (record?.Message is not { } message)
            {
                continue;
            }

            Interlocked.Increment(ref _records);
            var largest = Interlocked.Read(ref _largestValue);
            if ((message.Value?.Length ?? 0) > largest)
            {
                Interlocked.Exchange(ref _largestValue, message.Value!.Length);
            }

            var reason = Header(message, "reason");
            if (string.IsNullOrWhiteSpace(reason))
            {
                Interlocked.Increment(ref _withoutReason);
                Problem($"dead letter {record.TopicPartitionOffset} has no reason");
            }

            if (Header(message, "truncated") is not null)
            {
                Interlocked.Increment(ref _truncated);
            }

            if (!int.TryParse(Header(message, "source.partition"), CultureInfo.InvariantCulture, out var partition)
                || !long.TryParse(Header(message, "source.offset"), CultureInfo.InvariantCulture, out var offset))
            {
                Problem($"dead letter {record.TopicPartitionOffset} does not name its source");
                continue;
            }

            lock (_lock)
            {
                _seen[(partition, offset)] = _seen.GetValueOrDefault((partition, offset)) + 1;
                _reasons[(partition, offset)] = reason ?? string.Empty;
            }
        }
    }

    private static string? Header(Message<byte[]?, byte[]?> message, string name) =>
        message.Headers is { } headers && headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    private void Problem(string text)
    {
        lock (_lock)
        {
            if (_problems.Count < 50)
            {
                _problems.Add(text);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;

        _consumer.Close();
        _consumer.Dispose();
        _stop.Dispose();
    }
}
