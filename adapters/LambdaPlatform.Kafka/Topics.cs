namespace LambdaPlatform.Kafka;

/// <summary>Names of the platform's Kafka topics.</summary>
public static class Topics
{
    /// <summary>Incoming events, keyed by user id.</summary>
    public const string Events = "events";

    /// <summary>Events the speed layer rejected, each with the reason (nothing is dropped silently).</summary>
    public const string DeadLetter = "events.dlq";
}
