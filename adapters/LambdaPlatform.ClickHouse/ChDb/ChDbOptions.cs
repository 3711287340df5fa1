namespace LambdaPlatform.ClickHouse;

/// <summary>How to open the embedded chDB backend.</summary>
public sealed record ChDbOptions
{
    /// <summary>The environment variable that names <c>libchdb.so</c> when <see cref="LibraryPath"/> is not set.</summary>
    public const string LibraryEnvironmentVariable = "LAMBDA_CHDB_LIBRARY";

    /// <summary>The chDB version the platform is built and tested against.</summary>
    public const string LibraryVersion = "26.5.3";

    /// <summary>
    /// Folder that holds the databases (created when missing). Required. chDB allows one data folder per
    /// process at a time: every open <see cref="ChDbClickHouse"/> in the process must use the same one.
    /// </summary>
    public required string DataPath { get; init; }

    /// <summary>
    /// Full path of <c>libchdb.so</c>. Default: the environment variable <c>LAMBDA_CHDB_LIBRARY</c>, else
    /// <c>$HOME/.cache/lambdaplatform/chdb/26.5.3/libchdb.so</c> (where <c>make deps</c> installs it).
    /// </summary>
    public string? LibraryPath { get; init; }

    /// <summary>
    /// Statements this instance runs at the same time (each on its own chDB connection, because one
    /// connection runs one statement at a time). Further calls wait. Default: the number of processors.
    /// </summary>
    public int MaxConcurrentQueries { get; init; } = Environment.ProcessorCount;

    /// <summary>The default library location: <c>$HOME/.cache/lambdaplatform/chdb/26.5.3/libchdb.so</c>.</summary>
    public static string DefaultLibraryPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "lambdaplatform", "chdb", LibraryVersion, "libchdb.so");

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataPath))
        {
            throw new ArgumentException("ChDbOptions.DataPath must name a folder.", nameof(DataPath));
        }

        if (DataPath.StartsWith(':'))
        {
            throw new ArgumentException($"ChDbOptions.DataPath '{DataPath}' must be a folder; in-memory chDB is not supported.", nameof(DataPath));
        }

        if (LibraryPath is not null && string.IsNullOrWhiteSpace(LibraryPath))
        {
            throw new ArgumentException("ChDbOptions.LibraryPath must be null or a file path.", nameof(LibraryPath));
        }

        if (MaxConcurrentQueries < 1)
        {
            throw new ArgumentException($"ChDbOptions.MaxConcurrentQueries must be at least 1 (was {MaxConcurrentQueries}).", nameof(MaxConcurrentQueries));
        }
    }

    /// <summary>Where the library is looked for, and why there: the option, the environment variable or the default.</summary>
    internal (string Path, string Source) ResolveLibrary()
    {
        if (LibraryPath is not null)
        {
            return (Path.GetFullPath(LibraryPath), "ChDbOptions.LibraryPath");
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(LibraryEnvironmentVariable);
        return string.IsNullOrWhiteSpace(fromEnvironment)
            ? (DefaultLibraryPath, "the default location")
            : (Path.GetFullPath(fromEnvironment), $"the environment variable {LibraryEnvironmentVariable}");
    }
}
