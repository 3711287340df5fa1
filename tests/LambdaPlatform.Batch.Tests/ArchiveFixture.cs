using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.Logging.Abstractions;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Batch.Tests;

/// <summary>
/// One dev broker shared by the archive tests; each test uses its own topic, consumer group and dataset folder
/// (GUID-suffixed), all under one temporary folder removed at the end.
/// </summary>
public sealed class ArchiveFixture : IAsyncLifetime
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "batch-tests-" + Guid.NewGuid().ToString("N"));

    public DevBroker Broker { get; private set; } = null!;

    public EventSchemaRegistry Schemas { get; } = EventSchemaRegistry.LoadDefault();

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        Broker = DevBroker.Start(new DevBrokerOptions());
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Broker.Dispose();
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    public string NewTopic(int partitions)
    {
        var topic = "events-" + Guid.NewGuid().ToString("N")[..12];
        Broker.CreateTopic(topic, partitions);
        return topic;
    }

    public string NewFolder()
    {
        var path = Path.Combine(_folder, Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    public ArchiverOptions Options(string topic, string root, string? group = null) => new()
    {
        BootstrapServers = Broker.BootstrapServers,
        Topic = topic,
        GroupId = group ?? "archive-" + Guid.NewGuid().ToString("N")[..12],
        RootPath = root,
        MaxFileEvents = 1_000,
        MaxFileAge = TimeSpan.FromMilliseconds(500),
        RetryBaseDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(400),
    };

    public async Task<Archiver> StartAsync(ArchiverOptions options)
    {
        var archiver = new Archiver(options, Schemas, new ArchiverMetrics(), NullLogger<Archiver>.Instance);
        await archiver.StartAsync(CancellationToken.None);
        return archiver;
    }

    /// <summary>Produces the messages (key, value) and returns where each landed, in input order.</summary>
    public IReadOnlyList<Produced> Produce(string topic, IReadOnlyList<(string? Key, byte[] Value)> messages)
    {
        var results = new ConcurrentDictionary<int, Produced>();
        using (var producer = new ProducerBuilder<string?, byte[]>(KafkaDefaults.ProducerConfig(Broker.BootstrapServers)).Build())
        {
            for (var i = 0; i < messages.Count; i++)
            {
                var index = i;
                producer.Produce(topic, new Message<string?, byte[]> { Key = messages[i].Key, Value = messages[i].Value }, report =>
                {
                    Assert.Equal(ErrorCode.NoError, report.Error.Code);
                    results[index] = new Produced(report.Partition.Value, report.Offset.Value, messages[index].Value);
                });
            }

            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }

        return [.. Enumerable.Range(0, messages.Count).Select(i => results[i])];
    }

    /// <summary>The group's committed offset per partition (-1001 when none), read without joining the group.</summary>
    public Dictionary<int, long> Committed(string topic, string group, int partitions)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(KafkaDefaults.ConsumerConfig(Broker.BootstrapServers, group)).Build();
        return consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(10))
            .ToDictionary(c => c.Partition.Value, c => c.Offset.Value);
    }

    public static async Task PollAsync(Func<bool> condition, string what)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(stopwatch.Elapsed < Deadline, "not before the deadline: " + what);
            await Task.Delay(50);
        }
    }

    public static async Task StopAsync(Archiver archiver)
    {
        await archiver.StopAsync(CancellationToken.None);
        archiver.Dispose();
    }

    /// <summary>Generated events between <paramref name="from"/> and <paramref name="to"/>, evenly spread.</summary>
    public static List<GeneratedEvent> Events(int seed, int count, DateTime from, DateTime to)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed });
        var step = (to - from).Ticks / Math.Max(1, count);
        return [.. Enumerable.Range(0, count).Select(i => generator.Next(from.AddTicks(step * i)))];
    }

    public static byte[] Invalid(int i) => Encoding.UTF8.GetBytes("{\"eventId\": \"broken-" + i);
}

/// <summary>Where a produced message landed.</summary>
public sealed record Produced(int Partition, long Offset, byte[] Value);

[CollectionDefinition(Name)]
public sealed class ArchiveCollection : ICollectionFixture<ArchiveFixture>
{
    public const string Name = "archive";
}
