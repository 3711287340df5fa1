using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Speed.Tests;

[Collection(PipelineCollection.Name)]
public sealed class SpeedConsumerTests(PipelineFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Consumer_WritesExactlyEveryEvent_When100000EventsAreProduced()
    {
        const int Count = 100_000;
        var (topic, dlq) = fixture.NewTopics(partitions: 4);
        var table = "events_" + Guid.NewGuid().ToString("N")[..12];
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 1 });
        var start = DateTime.UtcNow.AddMinutes(-30);
        var ids = new HashSet<Guid>();
        using (var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(fixture.Broker.BootstrapServers)).Build())
        {
            for (var i = 0; i < Count; i++)
            {
                var e = generator.Next(start.AddMilliseconds(i));
                ids.Add(e.EventId);
                producer.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
            }

            producer.Flush(TimeSpan.FromSeconds(60));
        }

        Assert.Equal(Count, ids.Count);
        await using (var consumer = await StartAsync(topic, dlq, table))
        {
            await PollAsync(async () => long.Parse(await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"), CultureInfo.InvariantCulture) >= Count);
        }

        Assert.Equal(Count.ToString(CultureInfo.InvariantCulture), await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"));
        Assert.Equal(Count.ToString(CultureInfo.InvariantCulture), await fixture.ScalarAsync($"SELECT uniqExact(eventId) FROM {table}"));
    }

    [Fact]
    public async Task Consumer_SendsEachInvalidEventToDeadLetterTopicWithReason()
    {
        var (topic, dlq) = fixture.NewTopics(partitions: 2);
        var table = "events_" + Guid.NewGuid().ToString("N")[..12];
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 2 });
        var now = DateTime.UtcNow.AddMinutes(-1);
        var valid = Enumerable.Range(0, 500).Select(i => generator.Next(now.AddMilliseconds(i)).Json).ToList();
        var template = Encoding.UTF8.GetString(generator.Next("user.action.checkout", now).Json);
        var invalid = new (string Json, string ExpectedReason)[]
        {
            ("{\"eventId\": \"broken", "malformed JSON"),
            (template.Replace("\"userId\"", "\"user\"", StringComparison.Ordinal), "'user' is not part of the event envelope"),
            (RemoveField(template, "cartValue"), "$.payload: required property 'cartValue' is missing"),
            (template.Replace("\"items\":", "\"items\":\"many\",\"x\":", StringComparison.Ordinal), "$.payload.items: expected array, got string"),
            (template.Replace("user.action.checkout", "user.action.teleport", StringComparison.Ordinal), "unknown event type 'user.action.teleport'"),
            ("", "empty message"),
        };

        using (var producer = new ProducerBuilder<Null, byte[]>(KafkaDefaults.ProducerConfig(fixture.Broker.BootstrapServers)).Build())
        {
            foreach (var json in valid)
            {
                producer.Produce(topic, new Message<Null, byte[]> { Value = json });
            }

            foreach (var (json, _) in invalid)
            {
                producer.Produce(topic, new Message<Null, byte[]> { Value = Encoding.UTF8.GetBytes(json) });
            }

            producer.Flush(TimeSpan.FromSeconds(30));
        }

        var reasons = new List<string>();
        await using (var consumer = await StartAsync(topic, dlq, table))
        {
            await PollAsync(async () => long.Parse(await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"), CultureInfo.InvariantCulture) >= valid.Count);
            using var dlqConsumer = new ConsumerBuilder<Ignore, byte[]>(KafkaDefaults.ConsumerConfig(fixture.Broker.BootstrapServers, "dlq-" + Guid.NewGuid())).Build();
            dlqConsumer.Subscribe(dlq);
            var stopwatch = Stopwatch.StartNew();
            while (reasons.Count < invalid.Length && stopwatch.Elapsed < Deadline)
            {
                if (dlqConsumer.Consume(TimeSpan.FromMilliseconds(200)) is { } record)
                {
                    reasons.Add(Encoding.UTF8.GetString(record.Message.Headers.GetLastBytes("reason")));
                }
            }

            dlqConsumer.Close();
        }

        Assert.Equal(valid.Count.ToString(CultureInfo.InvariantCulture), await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"));
        Assert.Equal(invalid.Length, reasons.Count);
        foreach (var (_, expected) in invalid)
        {
            Assert.Contains(reasons, r => r.Contains(expected, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Options_NameTheBadSetting()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SpeedOptions { BootstrapServers = "x:1", FlushInterval = TimeSpan.FromSeconds(5) }.Validate());
        Assert.Equal("FlushInterval", e.ParamName);
        Assert.Equal("BootstrapServers", Assert.Throws<ArgumentException>(() => new SpeedOptions().Validate()).ParamName);
        Assert.Equal("MaxPrefetchKilobytes", Assert.Throws<ArgumentOutOfRangeException>(() => new SpeedOptions { BootstrapServers = "x:1", MaxPrefetchKilobytes = 0 }.Validate()).ParamName);
        Assert.Equal("MinFlushInterval", Assert.Throws<ArgumentOutOfRangeException>(
            () => new SpeedOptions { BootstrapServers = "x:1", FlushInterval = TimeSpan.FromMilliseconds(500), MinFlushInterval = TimeSpan.FromMilliseconds(600) }.Validate()).ParamName);
    }

    [Fact]
    public async Task Consumer_StaysInGroupAndWritesEveryEventOnce_WhenWritesFailLongerThanMaxPollInterval()
    {
        const int Count = 2_000;
        var maxPoll = TimeSpan.FromSeconds(45);
        var (topic, dlq) = fixture.NewTopics(partitions: 2);
        var table = "events_" + Guid.NewGuid().ToString("N")[..12];
        var sink = new FailingSink(new RawEventsTable(fixture.ClickHouse, table)) { Failing = true };
        await sink.InitializeAsync();
        var logger = new ListLogger();
        var consumer = new SpeedConsumer(
            new SpeedOptions { BootstrapServers = fixture.Broker.BootstrapServers, Topic = topic, DeadLetterTopic = dlq, GroupId = "speed-" + Guid.NewGuid(), MaxPollInterval = maxPoll },
            fixture.Schemas, [sink], new SpeedMetrics(), logger);
        await using (new RunningConsumer(consumer))
        {
            await consumer.StartAsync(CancellationToken.None);
            var generator = new EventGenerator(new EventGeneratorOptions { Seed = 3 });
            var now = DateTime.UtcNow.AddMinutes(-1);
            using (var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(fixture.Broker.BootstrapServers)).Build())
            {
                for (var i = 0; i < Count; i++)
                {
                    var e = generator.Next(now.AddMilliseconds(i));
                    producer.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
                }

                producer.Flush(TimeSpan.FromSeconds(60));
            }

            await PollAsync(() => Task.FromResult(sink.Refused > 0 && !consumer.Health.Healthy));
            Assert.Contains("consumption paused", consumer.Health.Status, StringComparison.Ordinal);

            // The fault outlasts max.poll.interval.ms: a consumer that stopped polling while retrying would be dropped from the group.
            await Task.Delay(maxPoll + TimeSpan.FromSeconds(10));
            Assert.False(consumer.Health.Healthy);
            sink.Failing = false;
            await PollAsync(async () => long.Parse(await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"), CultureInfo.InvariantCulture) >= Count);
            await PollAsync(() => Task.FromResult(consumer.Health.Healthy));
        }

        Assert.Equal(Count.ToString(CultureInfo.InvariantCulture), await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"));
        Assert.DoesNotContain(logger.Warnings, w => w.Contains("poll interval", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(logger.Warnings, w => w.Contains("offset commit failed", StringComparison.Ordinal));
        Assert.Contains(logger.Warnings, w => w.Contains("speed flush failed (attempt", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Consumer_ReadsOnWhileABatchIsWritten_AndCommitsItOnlyWhenDurable()
    {
        var (topic, dlq) = fixture.NewTopics(partitions: 1);
        var table = "events_" + Guid.NewGuid().ToString("N")[..12];
        var sink = new GatedSink(new RawEventsTable(fixture.ClickHouse, table));
        await sink.InitializeAsync();
        var group = "speed-" + Guid.NewGuid();
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 4 });
        var now = DateTime.UtcNow.AddMinutes(-1);
        using var producer = new ProducerBuilder<string, byte[]>(KafkaDefaults.ProducerConfig(fixture.Broker.BootstrapServers)).Build();
        using var admin = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(fixture.Broker.BootstrapServers, group)).Build();
        var partition = new TopicPartition(topic, 0);
        var consumer = new SpeedConsumer(
            new SpeedOptions { BootstrapServers = fixture.Broker.BootstrapServers, Topic = topic, DeadLetterTopic = dlq, GroupId = group },
            fixture.Schemas, [sink], new SpeedMetrics(), NullLogger<SpeedConsumer>.Instance);
        await using (new RunningConsumer(consumer))
        {
            await consumer.StartAsync(CancellationToken.None);
            for (var i = 0; i < 100; i++)
            {
                var e = generator.Next(now.AddMilliseconds(i));
                producer.Produce(topic, new Message<string, byte[]> { Key = e.UserId, Value = e.Json });
            }

            producer.Flush(TimeSpan.FromSeconds(30));
            await PollAsync(() => Task.FromResult(sink.Waiting > 0)); // the first batch's write has begun, and is held

            // Read on while it is held: a record produced now reaches the dead-letter topic before the write ends.
            producer.Produce(topic, new Message<string, byte[]> { Key = "late", Value = Encoding.UTF8.GetBytes("{\"eventId\": \"broken") });
            producer.Flush(TimeSpan.FromSeconds(30));
            using (var dead = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(fixture.Broker.BootstrapServers, "dlq-" + Guid.NewGuid())).Build())
            {
                dead.Subscribe(dlq);
                var stopwatch = Stopwatch.StartNew();
                while (dead.Consume(TimeSpan.FromMilliseconds(200)) is null)
                {
                    Assert.True(stopwatch.Elapsed < Deadline, "the consumer did not read on while a batch was written");
                }

                dead.Close();
            }

            // Nothing is committed while the batch is not durable.
            Assert.Equal(1, sink.Waiting);
            Assert.Equal("0", await fixture.ScalarAsync($"SELECT count() FROM {table}"));
            Assert.True(admin.Committed([partition], TimeSpan.FromSeconds(10)).Single().Offset.Value < 0, "offsets were committed before the batch was durable");

            sink.Open();
            await PollAsync(() => Task.FromResult(admin.Committed([partition], TimeSpan.FromSeconds(10)).Single().Offset.Value == 101));
            Assert.Equal("100", await fixture.ScalarAsync($"SELECT count() FROM {table} FINAL"));
        }
    }

    private static string RemoveField(string json, string field)
    {
        var start = json.IndexOf("\"" + field + "\":", StringComparison.Ordinal);
        var end = json.IndexOf(',', start);
        return json.Remove(start, end - start + 1);
    }

    private async Task<RunningConsumer> StartAsync(string topic, string dlq, string table)
    {
        var sink = new RawEventsTable(fixture.ClickHouse, table);
        await sink.InitializeAsync();
        var consumer = new SpeedConsumer(
            new SpeedOptions { BootstrapServers = fixture.Broker.BootstrapServers, Topic = topic, DeadLetterTopic = dlq, GroupId = "speed-" + Guid.NewGuid() },
            fixture.Schemas, [sink], new SpeedMetrics(), NullLogger<SpeedConsumer>.Instance);
        await consumer.StartAsync(CancellationToken.None);
        return new RunningConsumer(consumer);
    }

    private static async Task PollAsync(Func<Task<bool>> condition)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(stopwatch.Elapsed < Deadline, "condition not met before the deadline");
            await Task.Delay(100);
        }
    }

    /// <summary>A real sink whose writes throw while <see cref="Failing"/> is on (ClickHouse refusing writes).</summary>
    private sealed class FailingSink(IEventSink inner) : IEventSink
    {
        private long _refused;

        public volatile bool Failing;

        public long Refused => Interlocked.Read(ref _refused);

        public string Name => inner.Name;

        public Task InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);

        public Task WriteAsync(IReadOnlyList<ConsumedEvent> batch, CancellationToken cancellationToken = default)
        {
            if (Failing)
            {
                Interlocked.Increment(ref _refused);
                throw new LambdaPlatform.ClickHouse.ClickHouseException("injected: writes refused", null, null, isTransient: true);
            }

            return inner.WriteAsync(batch, cancellationToken);
        }
    }

    /// <summary>A real sink whose writes wait until <see cref="Open"/> is called (ClickHouse slow to take a batch).</summary>
    private sealed class GatedSink(IEventSink inner) : IEventSink
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _waiting;

        public int Waiting => Volatile.Read(ref _waiting);

        public string Name => inner.Name;

        public void Open() => _gate.TrySetResult();

        public Task InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);

        public async Task WriteAsync(IReadOnlyList<ConsumedEvent> batch, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _waiting);
            await _gate.Task.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _waiting);
            await inner.WriteAsync(batch, cancellationToken);
        }
    }

    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger<SpeedConsumer>
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _warnings = new();

        public IReadOnlyCollection<string> Warnings => _warnings;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= Microsoft.Extensions.Logging.LogLevel.Warning)
            {
                _warnings.Enqueue(formatter(state, exception));
            }
        }
    }

    private sealed class RunningConsumer(SpeedConsumer consumer) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await consumer.StopAsync(CancellationToken.None);
            consumer.Dispose();
        }
    }
}
