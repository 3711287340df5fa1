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
            (template.Replace("\"items\":", "\"items\":\"many\",\"x\":", StringComparison.Ordinal), "$.payload.items: expected integer, got string"),
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

    private sealed class RunningConsumer(SpeedConsumer consumer) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await consumer.StopAsync(CancellationToken.None);
            consumer.Dispose();
        }
    }
}
