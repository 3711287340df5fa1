using System.Diagnostics;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// A <c>lambda</c> command in its own operating-system process, as a process supervisor (systemd, a Procfile runner) would run
/// it: the built tool next to this assembly, the given environment, output appended to a log file.
/// </summary>
internal sealed class DeployedProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _gate = new();
    private bool _closed;

    private DeployedProcess(string name, Process process, StreamWriter log, string logPath)
    {
        Name = name;
        _process = process;
        _log = log;
        LogPath = logPath;
    }

    public string Name { get; }

    public string LogPath { get; }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>Starts <c>lambda <paramref name="arguments"/></c> in <paramref name="workingDirectory"/>.</summary>
    public static DeployedProcess Start(string name, IReadOnlyList<string> arguments, string workingDirectory, IReadOnlyDictionary<string, string> environment, string logFolder)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "lambda.dll"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_gcServer"] = "0";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var logPath = Path.Combine(logFolder, name + ".log");
        var log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start lambda");
        var started = new DeployedProcess(name, process, log, logPath);
        process.OutputDataReceived += (_, e) => started.Write(e.Data);
        process.ErrorDataReceived += (_, e) => started.Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        started.Write($"--- started (pid {process.Id}): lambda {string.Join(' ', arguments)}");
        return started;
    }

    /// <summary>SIGTERM, as <c>systemctl stop</c> sends, then waits for the exit.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
            await kill.WaitForExitAsync();
        }

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
        }
    }

    /// <summary>SIGKILL: a crashed machine.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: false);
            }
            catch (InvalidOperationException)
            {
                // Ended between the check and the kill.
            }
        }

        await _process.WaitForExitAsync();
    }

    public string Tail(int lines = 25)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return $"--- {Name} ({LogPath}):\n" + string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        lock (_gate)
        {
            _closed = true;
            _log.Dispose();
        }

        _process.Dispose();
    }

    private void Write(string? line)
    {
        lock (_gate)
        {
            if (line is not null && !_closed)
            {
                _log.WriteLine(line);
            }
        }
    }

    private static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        return current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }
}
