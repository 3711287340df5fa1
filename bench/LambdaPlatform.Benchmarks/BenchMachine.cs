using System.Diagnostics;
using System.Globalization;

namespace LambdaPlatform.Benchmarks;

/// <summary>What every figure of a run records about where and what was measured: commit, date, cores, memory.</summary>
internal static class BenchMachine
{
    /// <summary>Stamps <paramref name="figures"/> with the commit, the date (now, UTC), the cores and the memory.</summary>
    public static List<BenchFigure> Stamp(IEnumerable<BenchFigure> figures)
    {
        var commit = Commit();
        var date = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var memory = MemoryGiB();
        return [.. figures.Select(f => f with { Commit = commit, Date = date, Cores = Environment.ProcessorCount, MemoryGiB = memory })];
    }

    /// <summary><c>git rev-parse HEAD</c> of the repository holding this program, plus <c>-dirty</c> if its tree has changes; "unknown" outside git.</summary>
    public static string Commit()
    {
        var root = RepositoryRoot();
        if (root is null)
        {
            return "unknown";
        }

        var head = Git(root, "rev-parse", "HEAD")?.Trim();
        if (string.IsNullOrEmpty(head))
        {
            return "unknown";
        }

        var status = Git(root, "status", "--porcelain", "--untracked-files=no");
        return string.IsNullOrWhiteSpace(status) ? head : head + "-dirty";
    }

    /// <summary>MemTotal of /proc/meminfo in GiB (one decimal), or null where there is none.</summary>
    public static double? MemoryGiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line["MemTotal:".Length..].Replace("kB", string.Empty, StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);
                    return Math.Round(kb / 1024.0 / 1024.0, 1);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    /// <summary>The nearest folder above the program (or the working directory) that holds <c>.git</c>.</summary>
    private static string? RepositoryRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (Directory.Exists(Path.Combine(dir.FullName, ".git")) || File.Exists(Path.Combine(dir.FullName, ".git")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    private static string? Git(string root, params string[] args)
    {
        try
        {
            var start = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add("-C");
            start.ArgumentList.Add(root);
            foreach (var a in args)
            {
                start.ArgumentList.Add(a);
            }

            using var git = Process.Start(start)!;
            var output = git.StandardOutput.ReadToEnd();
            git.WaitForExit();
            return git.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // no git on this machine
        }
    }
}
