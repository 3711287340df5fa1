namespace LambdaPlatform.Batch.Master;

/// <summary>
/// The master dataset is not what it must be: a file lacks the schema, or a state file cannot be read. Retrying does
/// not help (I/O failures surface as <see cref="IOException"/> instead, which a retry may fix).
/// </summary>
public sealed class MasterDatasetException : Exception
{
    /// <summary>Creates an exception with a default message.</summary>
    public MasterDatasetException()
        : this("The master dataset is inconsistent.")
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public MasterDatasetException(string message)
        : this(message, path: null)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    public MasterDatasetException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception naming the offending file.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="path">The file, or <see langword="null"/>.</param>
    /// <param name="innerException">The cause, or <see langword="null"/>.</param>
    public MasterDatasetException(string message, string? path, Exception? innerException = null)
        : base(message, innerException)
    {
        FilePath = path;
    }

    /// <summary>The file at fault, or <see langword="null"/>.</summary>
    public string? FilePath { get; }
}
