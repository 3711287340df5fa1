namespace LambdaPlatform.Schemas.Validation;

/// <summary>A schema or definition file could not be loaded: names the file, the place in it, and what is wrong.</summary>
public sealed class SchemaLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SchemaLoadException(string file, string location, string problem)
        : base($"{file}: {location}: {problem}")
    {
        File = file;
        Location = location;
        Problem = problem;
    }

    /// <summary>Creates the exception with a message.</summary>
    public SchemaLoadException() : this("?", "#", "schema error") { }

    /// <summary>Creates the exception with a message.</summary>
    public SchemaLoadException(string message) : this("?", "#", message) { }

    /// <summary>Creates the exception with a message and cause.</summary>
    public SchemaLoadException(string message, Exception innerException) : base(message, innerException)
    {
        File = "?";
        Location = "#";
        Problem = message;
    }

    /// <summary>The file (or other source) that holds the mistake.</summary>
    public string File { get; }

    /// <summary>Where in the file: a JSON pointer, or <c>line N</c>.</summary>
    public string Location { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
