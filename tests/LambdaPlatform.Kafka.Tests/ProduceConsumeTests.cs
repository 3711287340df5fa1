using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Xunit.Abstractions;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Kafka.Tests;

public sealed class ProduceConsumeTests(ITestOutputHelper output)
{
    [Fact]
    public void ConsumerGroup_ReadsEveryMessageAndCommitsOffsets_WhenTopicHasSeveralPartitions()
    {
        const int partitions = 4;
        const int count = 10_000;
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        var group = TestKafka.GroupId();
        broker.CreateTopic(topic, partitions);

        using (var producer = TestKafka.Producer(broker))
        {
            for (var i = 0; i < count; i++)
            {
                producer.Produce(topic, new Message<string, string> { Key = $"user-{i % 97}", Value = i.ToString(CultureInfo.InvariantCulture) });
            }

            Assert.Equal(0, producer.Flush(TestKafka.Deadline));
        }

        using (var consumer = new ConsumerBuilder<string, string>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, group)).Build())
        {
            consumer.Subscribe(topic);
            var results = TestKafka.ConsumeUpTo(consumer, count);
            foreach (var result in results)
            {
                consumer.StoreOffset(result);
            }

            consumer.Commit();
            consumer.Close();

            Assert.Equal(Enumerable.Range(0, count), results.Select(r => int.Parse(r.Message.Value, CultureInfo.InvariantCulture)).Order());
            Assert.Equal(partitions, results.Select(r => r.Partition.Value).Distinct().Count());
        }

        using var fresh = new ConsumerBuilder<string, string>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, group)).Build();
        var all = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToList();
        var committed = fresh.Committed(all, TestKafka.Deadline);
        var ends = all.Select(tp => fresh.QueryWatermarkOffsets(tp, TestKafka.Deadline).High.Value).ToList();

        Assert.Equal(ends, committed.OrderBy(c => c.Partition.Value).Select(c => c.Offset.Value));
        Assert.Equal(count, ends.Sum());
    }

    [Fact]
    public async Task Commit_NeverFailsAndNothingIsRedelivered_WhenSecondMemberJoinsGroup()
    {
        // Guards the choice of group.protocol=consumer (KIP-848) in KafkaDefaults: with the classic protocol the
        // mock answers REBALANCE_IN_PROGRESS to every commit for about session.timeout.ms and re-delivers.
        const int partitions = 4;
        using var broker = DevBroker.Start();
        var topic = TestKafka.TopicName();
        var group = TestKafka.GroupId();
        broker.CreateTopic(topic, partitions);
        using var producer = TestKafka.Producer(broker);
        var next = 0;
        void ProduceBatch(int n)
        {
            for (var i = 0; i < n; i++)
            {
                producer.Produce(topic, new Message<string, string> { Key = $"user-{next}", Value = (next++).ToString(CultureInfo.InvariantCulture) });
            }

            Assert.Equal(0, producer.Flush(TestKafka.Deadline));
        }

        var seen = new ConcurrentDictionary<string, int>();
        var commitErrors = new ConcurrentQueue<ErrorCode>();
        var assignedToB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        Task Member(bool isB) => Task.Factory.StartNew(
            () =>
            {
                using var consumer = new ConsumerBuilder<string, string>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, group))
                    .SetPartitionsAssignedHandler((_, assigned) => { if (isB && assigned.Count > 0) { assignedToB.TrySetResult(); } })
                    .Build();
                consumer.Subscribe(topic);
                while (!stop.IsCancellationRequested)
                {
                    var result = consumer.Consume(TimeSpan.FromMilliseconds(20));
                    if (result is not null)
                    {
                        seen.AddOrUpdate(result.Message.Value, 1, (_, n) => n + 1);
                        consumer.StoreOffset(result);
                    }

                    try
                    {
                        consumer.Commit(); // Also while the group reassigns partitions.
                    }
                    catch (KafkaException e) when (e.Error.Code == ErrorCode.Local_NoOffset)
                    {
                        // Nothing new stored since the last commit.
                    }
                    catch (KafkaException e)
                    {
                        commitErrors.Enqueue(e.Error.Code);
                    }
                }

                consumer.Close();
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        ProduceBatch(2_000);
        var a = Member(isB: false);
        await WaitUntil(() => seen.Count >= 2_000);
        var clock = Stopwatch.StartNew();
        var b = Member(isB: true);
        await assignedToB.Task.WaitAsync(TestKafka.Deadline);
        output.WriteLine($"second member got partitions {clock.ElapsedMilliseconds} ms after it subscribed");
        ProduceBatch(2_000);
        await WaitUntil(() => seen.Count >= 4_000);
        await stop.CancelAsync();
        await Task.WhenAll(a, b);

        Assert.Empty(commitErrors);
        Assert.Equal(4_000, seen.Count);
        Assert.All(seen.Values, n => Assert.Equal(1, n));
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TestKafka.Deadline, "condition not met before the deadline");
            await Task.Delay(20);
        }
    }
}
