using Confluent.Kafka;

namespace LambdaPlatform.Dev.Kafka;

/// <summary>
/// A dev broker operation failed: the librdkafka mock cluster returned an error, or the broker could not
/// start (for example, a fixed port is taken).
/// </summary>
public sealed class DevBrokerException : Exception
{
    /// <summary>Creates an exception with <see cref="ErrorCode.Local_Fail"/> and no operation.</summary>
    public DevBrokerException()
        : this("Dev broker operation failed.")
    {
    }

    /// <summary>Creates an exception with <see cref="ErrorCode.Local_Fail"/> and the given message.</summary>
    /// <param name="message">What went wrong.</param>
    public DevBrokerException(string message)
        : this(message, null)
    {
    }

    /// <summary>Creates an exception with <see cref="ErrorCode.Local_Fail"/>, a message and its cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause, or <see langword="null"/>.</param>
    public DevBrokerException(string message, Exception? innerException)
        : base(message, innerException)
    {
        ErrorCode = ErrorCode.Local_Fail;
        Operation = string.Empty;
    }

    /// <summary>Creates an exception for a failed operation.</summary>
    /// <param name="errorCode">The librdkafka error code (same numbering as <see cref="Confluent.Kafka.ErrorCode"/>).</param>
    /// <param name="operation">The operation that failed, e.g. <c>create topic 'events'</c>.</param>
    /// <param name="reason">librdkafka's description of the error.</param>
    /// <param name="innerException">The cause, or <see langword="null"/>.</param>
    public DevBrokerException(ErrorCode errorCode, string operation, string reason, Exception? innerException = null)
        : base($"Dev broker: {operation} failed: {reason} ({errorCode}).", innerException)
    {
        ErrorCode = errorCode;
        Operation = operation;
    }

    /// <summary>The librdkafka error code; negative values are client-local errors (<c>Local_*</c>).</summary>
    public ErrorCode ErrorCode { get; }

    /// <summary>The operation that failed; empty when not known.</summary>
    public string Operation { get; }

    /// <summary>
    /// Whether repeating the operation can succeed without changing it: <see langword="false"/> for
    /// "already exists", unknown broker or partition and invalid arguments.
    /// </summary>
    public bool IsRetriable => ErrorCode is ErrorCode.Local_Transport or ErrorCode.Local_TimedOut
        or ErrorCode.BrokerNotAvailable or ErrorCode.LeaderNotAvailable or ErrorCode.RequestTimedOut;
}
