namespace LambdaPlatform.Cli;

/// <summary>A long-running command's work (the speed layer, the archiver) ended with an error: one line, exit code 1, so a supervisor restarts it.</summary>
public sealed class ServiceFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ServiceFailedException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ServiceFailedException() : base("a background service failed") { }

    /// <summary>Creates the exception.</summary>
    public ServiceFailedException(string message, Exception innerException) : base(message, innerException) { }
}
