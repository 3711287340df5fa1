using Confluent.Kafka;
using LambdaPlatform.Kafka;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>How far a consumer group has committed, read from the broker as any operator would.</summary>
public sealed class GroupProgress : IDisposable
{
    private readonly IConsumer<byte[], byte[]> _probe;
    private readonly string _topic;
    private readonly int _partitions;

    /// <summary>Creates a probe for <paramref name="groupId"/> on <paramref name="topic"/> (it never joins the group).</summary>
    public GroupProgress(string bootstrapServers, string groupId, string topic, int partitions)
    {
        _topic = topic;
        _partitions = partitions;
        _probe = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(bootstrapServers, groupId, GroupProtocol.Classic)).Build();
    }

    /// <summary>Records not yet committed by the group, over all partitions.</summary>
    public long Lag()
    {
        var partitions = Enumerable.Range(0, _partitions).Select(p => new TopicPartition(_topic, p)).ToList();
        var committed = _probe.Committed(partitions, TimeSpan.FromSeconds(10));
        long lag = 0;
        foreach (var c in committed)
        {
            var high = _probe.QueryWatermarkOffsets(c.TopicPartition, TimeSpan.FromSeconds(10)).High.Value;
            var at = c.Offset.Value < 0 ? 0 : c.Offset.Value;
            lag += Math.Max(0, high - at);
        }

        return lag;
    }

    /// <summary>Polls until the group has committed everything, or throws after <paramref name="timeout"/>.</summary>
    public async Task WaitCaughtUpAsync(TimeSpan timeout, string name, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        long lag = -1;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                lag = Lag();
                if (lag == 0)
                {
                    return;
                }
            }
            catch (KafkaException)
            {
                // The broker may be down on purpose; ask again.
            }

            await Task.Delay(250, cancellationToken);
        }

        throw new TimeoutException($"{name} did not catch up within {timeout}: {lag} records not committed");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _probe.Close();
        _probe.Dispose();
    }
}
