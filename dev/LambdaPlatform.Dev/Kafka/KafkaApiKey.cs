namespace LambdaPlatform.Dev.Kafka;

/// <summary>Kafka protocol request types (API keys), for injecting faults into the dev broker.</summary>
/// <remarks>Values are the numbers of the Kafka protocol; only requests the mock cluster serves are listed.</remarks>
#pragma warning disable CA1028 // The protocol defines API keys as int16; the native API takes int16.
public enum KafkaApiKey : short
#pragma warning restore CA1028
{
    /// <summary>Produce (0).</summary>
    Produce = 0,

    /// <summary>Fetch (1).</summary>
    Fetch = 1,

    /// <summary>ListOffsets (2).</summary>
    ListOffsets = 2,

    /// <summary>Metadata (3).</summary>
    Metadata = 3,

    /// <summary>OffsetCommit (8).</summary>
    OffsetCommit = 8,

    /// <summary>OffsetFetch (9).</summary>
    OffsetFetch = 9,

    /// <summary>FindCoordinator (10).</summary>
    FindCoordinator = 10,

    /// <summary>JoinGroup (11), classic group protocol.</summary>
    JoinGroup = 11,

    /// <summary>Heartbeat (12), classic group protocol.</summary>
    Heartbeat = 12,

    /// <summary>LeaveGroup (13), classic group protocol.</summary>
    LeaveGroup = 13,

    /// <summary>SyncGroup (14), classic group protocol.</summary>
    SyncGroup = 14,

    /// <summary>ApiVersions (18).</summary>
    ApiVersions = 18,

    /// <summary>InitProducerId (22), used by idempotent and transactional producers.</summary>
    InitProducerId = 22,

    /// <summary>OffsetForLeaderEpoch (23).</summary>
    OffsetForLeaderEpoch = 23,

    /// <summary>AddPartitionsToTxn (24).</summary>
    AddPartitionsToTxn = 24,

    /// <summary>AddOffsetsToTxn (25).</summary>
    AddOffsetsToTxn = 25,

    /// <summary>EndTxn (26).</summary>
    EndTxn = 26,

    /// <summary>TxnOffsetCommit (28).</summary>
    TxnOffsetCommit = 28,

    /// <summary>ConsumerGroupHeartbeat (68), the KIP-848 <c>consumer</c> group protocol.</summary>
    ConsumerGroupHeartbeat = 68,
}
