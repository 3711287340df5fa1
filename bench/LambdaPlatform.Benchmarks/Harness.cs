using System.Diagnostics;
using System.Text.Json;

namespace LambdaPlatform.Benchmarks;

/// <summary>Helpers of the end-to-end harnesses: medians, percentiles, polling, child processes, and running on every core.</summary>
internal static class Harness
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new InvalidOperationException("no measurements");
        }

        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Nearest-rank percentile (q in [0, 1]).</summary>
    public static double Percentile(IReadOnlyList<double> values, double q)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new InvalidOperationException("no measurements");
        }

        var rank = (int)Math.Ceiling(q * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    /// <summary>Polls <paramref name="done"/> every <paramref name="interval"/> until it holds; throws <see cref="TimeoutException"/> naming <paramref name="what"/> after <paramref name="deadline"/>.</summary>
    public static Task PollAsync(Func<Task<bool>> done, TimeSpan deadline, string what, TimeSpan? interval = null) =>
        PollAsync(done, deadline, () => what, interval);

    /// <summary>As above; <paramref name="what"/> is asked only on a timeout (so it can report the progress made).</summary>
    public static async Task PollAsync(Func<Task<bool>> done, TimeSpan deadline, Func<string> what, TimeSpan? interval = null)
    {
        var waited = Stopwatch.StartNew();
        while (!await done())
        {
            if (waited.Elapsed > deadline)
            {
                throw new TimeoutException($"not within {deadline.TotalSeconds:0} s: {what()}");
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(5));
        }
    }

    /// <summary>Lets the process use every core until disposed, then restores the previous affinity.</summary>
    public static IDisposable AllCores()
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsWindows()))
        {
            return new Restore(null);
        }

        var process = Process.GetCurrentProcess();
        var previous = process.ProcessorAffinity;
        process.ProcessorAffinity = (nint)((1L << Environment.ProcessorCount) - 1);
        return new Restore(previous);
    }

    public static void Log(string message) => Console.WriteLine($"// [harness {DateTime.UtcNow:HH:mm:ss}] {message}");

    /// <summary>A loud line that a reader of the log cannot miss.</summary>
    public static void Warn(string message)
    {
        var bar = new string('!', 100);
        Console.WriteLine(bar);
        Console.WriteLine($"!! WARNING: {message}");
        Console.WriteLine(bar);
    }

    /// <summary>
    /// Runs this program again as a child process with <paramref name="args"/> (the first is the child's flag) plus the
    /// path of a JSON file the child writes its result to, and returns that result. Used where a part needs a chDB of
    /// its own (chDB allows one data path per process).
    /// </summary>
    public static async Task<T> RunChildAsync<T>(IEnumerable<string> args)
    {
        var output = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-child-" + Guid.NewGuid().ToString("N") + ".json");
        var self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Harness).Assembly.Location);
        }

        var list = args.ToList();
        foreach (var a in list)
        {
            start.ArgumentList.Add(a);
        }

        start.ArgumentList.Add(output);
        using var child = Process.Start(start)!;
        await child.WaitForExitAsync();
        try
        {
            if (child.ExitCode != 0 || !File.Exists(output))
            {
                throw new InvalidOperationException($"the benchmark child {list[0]} failed (exit {child.ExitCode})");
            }

            return JsonSerializer.Deserialize<T>(await File.ReadAllTextAsync(output)) ?? throw new InvalidOperationException($"the benchmark child {list[0]} wrote no result");
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>Deletes a folder tree, ignoring what cannot be deleted (a temporary folder of a benchmark).</summary>
    public static void DeleteFolder(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed class Restore(nint? previous) : IDisposable
    {
        public void Dispose()
        {
            if (previous is { } p && (OperatingSystem.IsLinux() || OperatingSystem.IsWindows()))
            {
                Process.GetCurrentProcess().ProcessorAffinity = p;
            }
        }
    }
}
