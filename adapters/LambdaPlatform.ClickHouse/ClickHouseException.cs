namespace LambdaPlatform.ClickHouse;

/// <summary>
/// The one exception type every ClickHouse backend throws: a server error with its ClickHouse error
/// code and the query, or an unreachable backend (no code).
/// </summary>
public sealed class ClickHouseException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ClickHouseException(string message, int? errorCode, string? query, bool isTransient, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
        Query = query;
        IsTransient = isTransient;
    }

    /// <summary>Creates an exception with only a message (for serialization-style construction).</summary>
    public ClickHouseException() : this("ClickHouse error", null, null, false) { }

    /// <summary>Creates an exception with a message.</summary>
    public ClickHouseException(string message) : this(message, null, null, false) { }

    /// <summary>Creates an exception with a message and cause.</summary>
    public ClickHouseException(string message, Exception innerException) : this(message, null, null, false, innerException) { }

    /// <summary>ClickHouse's numeric error code (e.g. 60 = UNKNOWN_TABLE, 62 = SYNTAX_ERROR); null when the backend was not reached.</summary>
    public int? ErrorCode { get; }

    /// <summary>The SQL that failed, when there was one.</summary>
    public string? Query { get; }

    /// <summary>True when a retry may succeed (backend unreachable, timeout, too many parts), false for errors in the request itself.</summary>
    public bool IsTransient { get; }
}
