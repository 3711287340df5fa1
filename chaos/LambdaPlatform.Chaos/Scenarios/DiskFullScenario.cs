using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The archiver's master-dataset folder runs out of space while events flow. The folder is a real, small filesystem
/// (a <c>tmpfs</c> of <see cref="FilesystemMegabytes"/> MiB mounted on it; root's writes are stopped by a full
/// filesystem, unlike by <c>chmod</c>) that a filler file fills to the last byte for
/// <see cref="ChaosSettings.ClickHouseOutage"/>; then the filler is deleted. Checked: the archive group's committed
/// offsets do not move while the disk is full, the archiver reports it (unhealthy with the reason, a warning per
/// failed attempt), and afterwards every acknowledged valid offset is in the master dataset exactly once.
/// </summary>
public sealed class DiskFullScenario : IChaosScenario
{
    /// <summary>Size of the filesystem mounted on the master-dataset folder.</summary>
    public const int FilesystemMegabytes = 64;

    private const int Partitions = 8;
    private const string GroupId = "archive";
    private static readonly TimeSpan Before = TimeSpan.FromSeconds(8);
    private static readonly TimeSpan After = TimeSpan.FromSeconds(8);

    /// <inheritdoc />
    public string Fault => "disk full: master dataset";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var folder = settings.Folder("disk-full");
        using var progress = new TeeWriter(log, Path.Combine(folder, "progress.log"));
        var master = settings.Folder("disk-full/master");
        await MountAsync(master, cancellationToken);
        try
        {
            return await RunAsync(settings, progress, master, cancellationToken);
        }
        finally
        {
            await UnmountAsync(master);
        }
    }

    private async Task<FaultResult> RunAsync(ChaosSettings settings, TeeWriter log, string master, CancellationToken cancellationToken)
    {
        var full = settings.ClickHouseOutage;
        log.WriteLine($"{Fault}: seed {settings.Seed}, {settings.FaultEvents} events over {(Before + full + After).TotalSeconds:0} s, " +
                      $"{master} is a {FilesystemMegabytes} MiB tmpfs, full for {full.TotalSeconds:0} s");
        var notes = new List<string> { $"master dataset on a real {FilesystemMegabytes} MiB tmpfs mounted for the run, filled to the last byte by a filler file" };
        var violations = new List<string>();

        using var broker = ChaosBroker.Start(Partitions);
        var logger = new CollectingLogger(log);
        using var metrics = new ArchiverMetrics();
        var options = new ArchiverOptions { BootstrapServers = broker.BootstrapServers, RootPath = master, MaxFileAge = TimeSpan.FromSeconds(2) };
        using var archiver = new Archiver(options, EventSchemaRegistry.LoadDefault(), metrics, logger);
        using var committed = new CommittedOffsets(broker.BootstrapServers, GroupId, Partitions);
        await archiver.StartAsync(cancellationToken);
        var stopped = false;
        try
        {
            var expected = new ExpectedViews();
            using var producer = new ChaosProducer(broker.BootstrapServers, expected);
            await using var production = new Production(producer, settings.Seed, settings.FaultEvents, Before + full + After, cancellationToken);
            await OutageProbes.WaitUntilAsync(() => Task.FromResult(CommittedOffsets.Total(committed.Read()) > 0), OutageProbes.Eventually, "first publication of the archiver", cancellationToken);
            await Task.Delay(Before / 2, cancellationToken);

            var filler = Path.Combine(master, "filler.bin");
            var filled = Fill(filler);
            var filledAt = DateTime.UtcNow;
            log.WriteLine($"filled {master} with {filled / (1024 * 1024)} MiB; free now {new DriveInfo(master).AvailableFreeSpace} bytes");
            try
            {
                await OutageProbes.WaitUntilAsync(() => Task.FromResult(!archiver.Health.Healthy), TimeSpan.FromSeconds(60), "archiver reporting unhealthy on a full disk", cancellationToken);
                notes.Add($"health went unhealthy after {(DateTime.UtcNow - filledAt).TotalSeconds:0.0} s: {archiver.Health.Status}");
            }
            catch (TimeoutException e)
            {
                violations.Add(e.Message + "; health: " + archiver.Health.Status);
            }

            // From the first failed attempt on, nothing may be committed until there is space again.
            var held = committed.Read();
            log.WriteLine($"holding at {CommittedOffsets.Total(held)} committed");
            int red = 0, green = 0;
            long maxLag = 0;
            var moved = false;
            while (DateTime.UtcNow - filledAt < full)
            {
                var now = committed.Read();
                if (!moved && now.Any(kv => held.GetValueOrDefault(kv.Key, -1) != kv.Value))
                {
                    moved = true;
                    violations.Add($"committed offsets moved while the disk was full: {CommittedOffsets.Total(held)} -> {CommittedOffsets.Total(now)}");
                }

                maxLag = Math.Max(maxLag, committed.HighWatermarks() - CommittedOffsets.Total(now));
                if (archiver.Health.Healthy)
                {
                    green++;
                }
                else
                {
                    red++;
                }

                await Task.Delay(1000, cancellationToken);
            }

            var failures = logger.Warnings.Count(w => w.Contains("failed (attempt", StringComparison.Ordinal));
            notes.Add($"while full: committed offsets held at {CommittedOffsets.Total(held)} records ({(moved ? "MOVED" : "unchanged")}), lag grew to {maxLag}, " +
                      $"unhealthy in {red} of {red + green} polls, {failures} failed publication attempts logged; last: {logger.Warnings.LastOrDefault()}");
            if (green > 0)
            {
                violations.Add($"the archiver reported healthy in {green} of {red + green} polls while the disk was full");
            }

            if (failures == 0)
            {
                violations.Add("no failed publication was logged while the disk was full");
            }

            File.Delete(filler);
            var freedAt = DateTime.UtcNow;
            log.WriteLine("filler deleted");
            await production.Completion;
            log.WriteLine($"producer done: {expected.Events} events acknowledged");
            if (producer.Failed > 0)
            {
                violations.Add($"{producer.Failed} events not acknowledged by Kafka: {producer.LastError}");
            }

            await OutageProbes.WaitUntilAsync(() => Task.FromResult(committed.HighWatermarks() == CommittedOffsets.Total(committed.Read())), OutageProbes.Eventually,
                "archiver committing every record after space returned", cancellationToken);
            await OutageProbes.WaitUntilAsync(() => Task.FromResult(archiver.Health.Healthy), OutageProbes.Eventually, "archiver healthy again", cancellationToken);
            notes.Add($"caught up {(DateTime.UtcNow - freedAt).TotalSeconds:0.0} s after space returned; {archiver.FilesPublished} files published");
            await archiver.StopAsync(cancellationToken);
            stopped = true;

            var leftovers = Directory.EnumerateFiles(master, "*.tmp", SearchOption.AllDirectories).Count();
            if (leftovers > 0)
            {
                notes.Add($"{leftovers} temporary files left behind (readers ignore them; compaction removes them)");
            }

            var comparison = await MasterDatasetCheck.CompareAsync(master, producer.ValidOffsets, cancellationToken);
            notes.Add($"master dataset: {comparison.Files} files, {comparison.Rows} rows (read directly), missing {comparison.Missing}, duplicated {comparison.Duplicated}, misplaced {comparison.Misplaced}");
            var publishFailures = failures;
            notes.AddRange(comparison.Problems);
            if (comparison.Misplaced > 0)
            {
                violations.Add($"{comparison.Misplaced} master dataset rows are not where their file's name and folder say");
            }

            // Injected: publication attempts that failed for want of space (each logged by the archiver).
            return new FaultResult(Fault, publishFailures, producer.ValidOffsets.Count, comparison.Rows - comparison.Duplicated, comparison.Missing, comparison.Duplicated)
            {
                Notes = notes,
                Error = violations.Count == 0 ? null : string.Join("; ", violations),
            };
        }
        finally
        {
            if (!stopped)
            {
                await archiver.StopAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>Writes zeros to <paramref name="path"/> until the filesystem refuses more; returns the bytes written.</summary>
    private static long Fill(string path)
    {
        long written = 0;
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        foreach (var size in new[] { 1 << 20, 1 << 12 })
        {
            var chunk = new byte[size];
            while (true)
            {
                try
                {
                    stream.Write(chunk);
                    written += size;
                }
                catch (IOException)
                {
                    break; // ENOSPC: full at this granularity
                }
            }
        }

        return written;
    }

    private static async Task MountAsync(string folder, CancellationToken cancellationToken)
    {
        var (code, output) = await RunAsync("mount", ["-t", "tmpfs", "-o", $"size={FilesystemMegabytes}m", "tmpfs", folder], cancellationToken);
        if (code != 0)
        {
            throw new InvalidOperationException($"cannot mount a small tmpfs on {folder} (needs root or CAP_SYS_ADMIN): exit {code}: {output}");
        }
    }

    private static async Task UnmountAsync(string folder)
    {
        var (code, output) = await RunAsync("umount", [folder], CancellationToken.None);
        if (code != 0)
        {
            // Busy for a moment (a file still open): lazily detach, so the scratch folder can be removed.
            (code, output) = await RunAsync("umount", ["-l", folder], CancellationToken.None);
            if (code != 0)
            {
                throw new InvalidOperationException($"cannot unmount {folder}: exit {code}: {output}");
            }
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + program);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }

    /// <summary>The archiver's log: warnings and errors kept for the checks, everything from Information up written to the scenario log.</summary>
    private sealed class CollectingLogger(TextWriter log) : ILogger<Archiver>
    {
        public ConcurrentQueue<string> Warnings { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            var message = formatter(state, exception);
            if (logLevel >= LogLevel.Warning)
            {
                Warnings.Enqueue(message);
            }

            if (logLevel >= LogLevel.Information)
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"archiver {logLevel}: {message}"));
            }
        }
    }
}
