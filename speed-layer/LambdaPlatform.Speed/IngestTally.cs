using Confluent.Kafka;
using LambdaPlatform.Schemas.Validation;
using LambdaPlatform.Serving.Store;

namespace LambdaPlatform.Speed;

/// <summary>
/// What a speed consumer read between two durable flushes: records, and the dead letters among them grouped by rule and path
/// with the first of each as a sample (its value shortened by <see cref="ServingStore.ShortenValue"/>). Taken at each flush
/// and recorded in the serving ClickHouse (<see cref="ISpeedProgress.RecordIngestAsync"/>), where every API instance reads the
/// ingest and dead-letter rates and the top reasons. Bounded: at most <see cref="MaxGroups"/> groups per flush, the rest counted
/// under rule <c>other</c>. Used by the consuming thread only; not thread-safe.
/// </summary>
public sealed class IngestTally
{
    /// <summary>Most (rule, path) groups kept per flush: 64.</summary>
    public const int MaxGroups = 64;

    private readonly Dictionary<(string Rule, string Path), DeadLetterGroup> _groups = [];
    private long _records;

    /// <summary>Counts one record read (valid or not).</summary>
    public void Read() => _records++;

    /// <summary>Counts one record sent to the dead-letter topic, keeping the first of its rule and path as a sample.</summary>
    public void DeadLettered(ConsumeResult<byte[]?, byte[]?> record, Violation violation)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(violation);
        var key = _groups.Count < MaxGroups || _groups.ContainsKey((violation.Rule, violation.Path)) ? (violation.Rule, violation.Path) : ("other", string.Empty);
        if (_groups.TryGetValue(key, out var group))
        {
            _groups[key] = group with { Records = group.Records + 1 };
            return;
        }

        var value = record.Message.Value;
        _groups[key] = new DeadLetterGroup(key.Item1, key.Item2, 1, violation.ToString(), record.Topic ?? string.Empty, record.Partition.Value, record.Offset.Value,
            ServingStore.ShortenValue(value, value is null));
    }

    /// <summary>What was counted since the last call, as a flush's record (null when nothing was read), and starts counting afresh.</summary>
    public IngestRecord? Take(string consumerGroup, DateTime flushedAt)
    {
        if (_records == 0 && _groups.Count == 0)
        {
            return null;
        }

        var result = new IngestRecord(consumerGroup, ServingStore.ThisInstance, flushedAt, _records, [.. _groups.Values]);
        _records = 0;
        _groups.Clear();
        return result;
    }
}
