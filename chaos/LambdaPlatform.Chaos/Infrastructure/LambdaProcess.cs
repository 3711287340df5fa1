using System.Diagnostics;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>
/// A <c>lambda</c> command (speed layer, archiver, batch run…) in its own operating-system process, so a
/// fault can SIGKILL it mid-write exactly as a crashed machine would. Its output goes to a log file.
/// </summary>
public sealed class LambdaProcess : IAsyncDisposable
{
    private readonly Process _process;

    private LambdaProcess(Process process, string logPath, string name)
    {
        _process = process;
        LogPath = logPath;
        Name = name;
    }

    /// <summary>A short name for logs ("speed", "archiver", "batch").</summary>
    public string Name { get; }

    /// <summary>Where stdout and stderr go.</summary>
    public string LogPath { get; }

    /// <summary>True once it ended.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Exit code (after it ended); 137 after a SIGKILL.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Operating-system process id.</summary>
    public int Id => _process.Id;

    /// <summary>The built <c>lambda</c> tool next to this assembly.</summary>
    public static string ToolPath => Path.Combine(AppContext.BaseDirectory, "lambda.dll");

    /// <summary>Starts <c>lambda <paramref name="arguments"/></c>, appending its output to <paramref name="logPath"/>.</summary>
    public static LambdaProcess Start(string name, IEnumerable<string> arguments, string logPath, IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var start = new ProcessStartInfo(DotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(ToolPath);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {ToolPath}");
        var log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        var gate = new Lock();
        var closed = false;
        void Write(string? line)
        {
            lock (gate)
            {
                // Output can still arrive after Exited: the reader threads drain the pipes on their own.
                if (line is not null && !closed)
                {
                    log.WriteLine(line);
                }
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) =>
        {
            lock (gate)
            {
                closed = true;
                log.Dispose();
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Write($"--- {DateTime.UtcNow:O} started {name} (pid {process.Id}): lambda {string.Join(' ', start.ArgumentList.Skip(1))}");
        return new LambdaProcess(process, logPath, name);
    }

    /// <summary>SIGKILL: no cleanup, no flush, no commit.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: false); // SIGKILL on Linux
            }
            catch (InvalidOperationException)
            {
                // It ended on its own between the check and the kill.
            }
        }

        await _process.WaitForExitAsync();
    }

    /// <summary>Waits for it to end on its own.</summary>
    public async Task<int> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{Name} (pid {_process.Id}) did not finish within {timeout}; see {LogPath}");
        }

        return _process.ExitCode;
    }

    /// <summary>The last lines of its log, for failure messages.</summary>
    public string Tail(int lines = 30) => string.Join('\n', ReadLog().Split('\n').TakeLast(lines));

    /// <summary>Its whole log so far (read while it may still be written), or empty when it cannot be read.</summary>
    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    /// <summary>A violation for each of <paramref name="processes"/> that ended although nothing stopped it: its exit code and log tail.</summary>
    public static IEnumerable<string> ExitedOnTheirOwn(params LambdaProcess[] processes) =>
        processes.Where(p => p.HasExited).Select(p => $"{p.Name} exited on its own with code {p.ExitCode}:\n{p.Tail()}");

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    private static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet")
        {
            return current;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }
}
