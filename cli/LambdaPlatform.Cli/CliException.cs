namespace LambdaPlatform.Cli;

/// <summary>A mistake the user can fix (bad argument, nothing running, unreachable server): printed as one line, exit code 1, no stack trace.</summary>
public sealed class CliException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CliException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public CliException() : base("error") { }

    /// <summary>Creates the exception.</summary>
    public CliException(string message, Exception innerException) : base(message, innerException) { }
}
