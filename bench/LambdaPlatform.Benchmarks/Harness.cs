using System.Diagnostics;

namespace LambdaPlatform.Benchmarks;

/// <summary>Helpers of the end-to-end harnesses: medians, percentiles, and running on every core.</summary>
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
