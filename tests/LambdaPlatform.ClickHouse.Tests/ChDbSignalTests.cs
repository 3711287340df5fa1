using System.Collections.Concurrent;
using System.Diagnostics;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// A process that uses chDB still stops gracefully on SIGINT and SIGTERM: the signals reach .NET's handlers, whose
/// registrations cancel the wait (like <c>lambda up</c> on Ctrl-C). Each case runs <see cref="SignalChild"/> in its own process.
/// </summary>
public sealed class ChDbSignalTests
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(NativeSignals.SigTerm, SignalChild.RegisterWhileStarting)]
    [InlineData(NativeSignals.SigInt, SignalChild.RegisterWhileStarting)]
    [InlineData(NativeSignals.SigTerm, SignalChild.RegisterInsideWindow)]
    [InlineData(NativeSignals.SigInt, SignalChild.TakenAfterStart)]
    public async Task Signal_StopsTheProcessGracefully_WhenChDbRanQueriesAndInserts(int signal, string mode)
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "lambda-chdb-signal-" + Guid.NewGuid().ToString("N"));
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(SignalChild).Assembly.Location);
        start.ArgumentList.Add(SignalChild.Verb);
        start.ArgumentList.Add(mode);
        start.ArgumentList.Add(dataPath);

        var output = new ConcurrentQueue<string>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var child = new Process { StartInfo = start };
        child.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                output.Enqueue(line);
                if (line == SignalChild.ReadyMarker)
                {
                    ready.TrySetResult();
                }
            }
        };
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                output.Enqueue("stderr: " + line);
            }
        };

        try
        {
            child.Start();
            child.BeginOutputReadLine();
            child.BeginErrorReadLine();
            using (var starting = new CancellationTokenSource(StartDeadline))
            {
                var exited = child.WaitForExitAsync(starting.Token);
                await Task.WhenAny(ready.Task, exited, Task.Delay(Timeout.Infinite, starting.Token));
            }

            Assert.True(ready.Task.IsCompleted, $"the child did not get ready within {StartDeadline}:\n{string.Join('\n', output)}");

            NativeSignals.Send(child.Id, signal);
            using (var stopping = new CancellationTokenSource(StopDeadline))
            {
                try
                {
                    await child.WaitForExitAsync(stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"the child still runs {StopDeadline} after signal {signal}:\n{string.Join('\n', output)}");
                }
            }

            var lines = string.Join('\n', output);
            Assert.True(output.Contains(SignalChild.StoppedMarker), $"signal {signal} did not reach the cancellation handler (exit code {child.ExitCode}):\n{lines}");
            Assert.True(child.ExitCode == 0, $"exit code {child.ExitCode} after signal {signal}:\n{lines}");
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill(entireProcessTree: true);
                await child.WaitForExitAsync();
            }

            if (Directory.Exists(dataPath))
            {
                Directory.Delete(dataPath, recursive: true);
            }
        }
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
