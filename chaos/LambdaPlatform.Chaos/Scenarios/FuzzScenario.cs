using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// Hostile input against the speed layer (<c>lambda speed</c> as a child process, a real clickhouse-server, the dev
/// broker): <see cref="ChaosSettings.HostileMessages"/> hostile records (see <see cref="FuzzMessages"/>; plus
/// 10 MB values, huge keys and huge headers) mixed at random with <see cref="ChaosSettings.FaultEvents"/> valid
/// events. Checks that every hostile record reaches <c>events.dlq</c> exactly once with a reason, that every valid
/// event is counted once by the merged views, and that the speed process never died and stayed below
/// <see cref="PeakRssBoundMiB"/> of resident memory.
/// </summary>
/// <remarks>
/// The dev broker keeps about 5 MiB (compressed) per partition. A record bigger than that, appended to a partition
/// that already holds records, empties the partition and moves its log start past the new record too (librdkafka
/// 2.16 mock: the trim loop runs before the new record is linked in), so the record is gone before anyone reads it.
/// A real broker would refuse it instead (<c>message.max.bytes</c>, 1 MB by default). So each 10 MB record that
/// does not compress is the first record of a partition of its own; 10 MB records that compress (to a few tens of
/// KB) go anywhere.
/// </remarks>
public sealed class FuzzScenario : IChaosScenario
{
    /// <summary>
    /// Peak resident memory (VmHWM, MiB) the speed process may reach while it digests the hostile input: measured
    /// 357 MiB at CI size (librdkafka fetch queue up to 64 MiB, 10 MB records copied into managed memory), plus headroom.
    /// </summary>
    public const int PeakRssBoundMiB = 512;

    private const int Partitions = 24;
    private const int HugeRandom = 3;
    private const int HugeCompressible = 6;
    private const int HugeKeys = 20;
    private const int HugeHeaders = 20;
    private const int ValidWithBigKeyOrHeaders = 20;

    /// <inheritdoc />
    public string Fault => "fuzz: hostile messages";

    /// <summary>What the last run saw of the dead-letter topic and the speed process (for tests), or null.</summary>
    internal FuzzObservations? LastRun { get; private set; }

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        await log.WriteLineAsync($"fuzz: seed {settings.Seed}, {settings.HostileMessages} hostile records, {settings.FaultEvents} valid events, {Partitions} partitions");
        var notes = new List<string> { $"seed {settings.Seed}" };
        var expected = new ExpectedViews();
        var stopwatch = Stopwatch.StartNew();
        long injected = 0;
        var logPath = Path.Combine(settings.Folder("fuzz"), "speed.log");
        try
        {
            await using var broker = ChaosBroker.Start(Partitions);
            await using var server = await ServingServer.StartAsync(settings.Folder("fuzz-clickhouse"), cancellationToken);
            await using var speed = LambdaProcess.Start("speed", ["speed", "--kafka", broker.BootstrapServers, "--clickhouse", server.ConnectionString], logPath);
            await using var dlq = new FuzzDeadLetterReader(broker.BootstrapServers, Topics.DeadLetter, Partitions);
            using var producer = new FuzzProducer(broker.BootstrapServers, Topics.Events, expected);
            using var progress = new GroupProgress(broker.BootstrapServers, "speed", Topics.Events, Partitions);

            var random = new Random(settings.Seed);
            var generator = new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed });
            var hostileGenerator = new FuzzMessages(random, new EventGenerator(new EventGeneratorOptions { Seed = settings.Seed + 1 }));

            // 10 MB records that do not compress each get a partition of their own (the last HugeRandom ones).
            var shared = Partitions - HugeRandom;
            var specials = new List<(Func<HostileMessage> Make, int? Partition)>();
            specials.AddRange(Enumerable.Range(0, HugeRandom).Select(i => ((Func<HostileMessage>)hostileGenerator.HugeRandom, (int?)(shared + i))));
            specials.AddRange(Enumerable.Range(0, HugeCompressible).Select(_ => ((Func<HostileMessage>)hostileGenerator.HugeCompressible, (int?)null)));
            specials.AddRange(Enumerable.Range(0, HugeKeys).Select(_ => ((Func<HostileMessage>)(() => hostileGenerator.HugeKey(64 * 1024 + random.Next(960 * 1024))), (int?)null)));
            specials.AddRange(Enumerable.Range(0, HugeHeaders).Select(_ => ((Func<HostileMessage>)(() => hostileGenerator.HugeHeaders(64 * 1024 + random.Next(960 * 1024))), (int?)null)));

            // Hostile records mixed at random with valid events (current, increasing event times).
            var hostileLeft = Math.Max(settings.HostileMessages, specials.Count);
            var validLeft = settings.FaultEvents;
            var bigValidLeft = ValidWithBigKeyOrHeaders;
            var last = DateTime.MinValue;
            while (hostileLeft + validLeft > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (random.Next(hostileLeft + validLeft) < hostileLeft)
                {
                    var (message, partition) = specials.Count > 0 && random.Next(hostileLeft) < specials.Count
                        ? Take(specials, random)
                        : (hostileGenerator.Next(), null);
                    _ = producer.SendHostile(message, partition ?? random.Next(shared));
                    hostileLeft--;
                    injected++;
                    continue;
                }

                var now = DateTime.UtcNow;
                last = now > last ? now : last;
                var e = generator.Next(last);
                byte[]? key = Encoding.UTF8.GetBytes(e.UserId);
                Headers? headers = null;
                if (bigValidLeft > 0 && random.Next(validLeft) < bigValidLeft)
                {
                    // Valid events may carry big keys or headers too: the speed layer reads only the value.
                    bigValidLeft--;
                    key = new byte[64 * 1024];
                    random.NextBytes(key);
                    headers = new Headers { { "trace", new byte[32 * 1024] } };
                }

                producer.SendValid(e, (int)((uint)e.UserId.GetHashCode(StringComparison.Ordinal) % shared), key, headers);
                validLeft--;
            }

            producer.Flush(TimeSpan.FromMinutes(2));
            if (producer.Failed > 0)
            {
                return Result(injected, expected, 0, 0, 0, notes) with { Error = $"{producer.Failed} records were not accepted by the broker: {producer.LastError}" };
            }

            var hostile = producer.Hostile;
            await log.WriteLineAsync($"fuzz: sent {hostile.Count} hostile records and {expected.Events} valid events in {stopwatch.Elapsed.TotalSeconds:F1} s");

            // 3. The speed layer digests everything: committed to the end, every hostile record dead-lettered.
            await WaitCaughtUpAsync(progress, speed, TimeSpan.FromMinutes(5), cancellationToken);
            await dlq.WaitAsync(d => d.Seen().Count >= hostile.Count, TimeSpan.FromMinutes(3), cancellationToken);
            var seen = dlq.Seen();
            var missing = hostile.Where(h => !seen.ContainsKey(h.Key)).ToList();
            var twice = seen.Where(s => s.Value > 1).Sum(s => (long)s.Value - 1);
            var notHostile = seen.Keys.Count(k => !hostile.ContainsKey(k));
            notes.Add($"dead letters: {dlq.Records} read, {seen.Count} distinct sources, {missing.Count} hostile records missing, {twice} duplicates, {notHostile} naming a valid event, {dlq.WithoutReason} without a reason, {dlq.Truncated} truncated (largest value {dlq.LargestValue} bytes)");
            foreach (var (source, kind) in missing.Take(10))
            {
                notes.Add($"missing from events.dlq: {kind} at partition {source.Partition} offset {source.Offset}");
            }

            notes.AddRange(dlq.Problems().Take(10));
            foreach (var group in hostile.Values.GroupBy(k => k).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                notes.Add($"  {group.Key}: {group.Count()}");
            }

            // 4. The merged views count every valid event once.
            var comparison = await MergedViewCheck.CompareAsync(server.Client, expected, cancellationToken);
            notes.AddRange(comparison.Mismatches);

            // 5. The speed process survived, in bounded memory.
            var peakMiB = PeakRssMiB(speed.Id);
            notes.Add($"speed process (pid {speed.Id}): {(speed.HasExited ? $"EXITED with code {speed.ExitCode}" : "still running, never restarted")}; peak RSS (VmHWM) {peakMiB} MiB, bound {PeakRssBoundMiB} MiB");
            notes.Add($"duration {stopwatch.Elapsed.TotalSeconds:F1} s");
            string? error = null;
            if (speed.HasExited)
            {
                error = $"the speed process died (exit code {speed.ExitCode}); see {speed.LogPath}:\n{speed.Tail()}";
            }
            else if (peakMiB > PeakRssBoundMiB)
            {
                error = $"the speed process peaked at {peakMiB} MiB resident, above the bound of {PeakRssBoundMiB} MiB";
            }

            LastRun = new FuzzObservations(hostile.Count, dlq.Records, seen.Count, missing.Count, twice, notHostile, dlq.WithoutReason, dlq.Truncated,
                dlq.LargestValue, dlq.Problems().Count, peakMiB, speed.HasExited, stopwatch.Elapsed);
            var lost = comparison.Lost + missing.Count + dlq.WithoutReason;
            var duplicated = comparison.Duplicated + twice;
            return Result(hostile.Count, expected, comparison.EventsInView, lost, duplicated, notes) with
            {
                Error = error,
                CellsCompared = comparison.CellsCompared,
                CellsWrong = comparison.CellsWrong,
                DeadLettered = dlq.Records,
            };
        }
        catch (Exception e) when (e is TimeoutException or KafkaException or InvalidOperationException or IOException)
        {
            notes.Add("speed log: " + logPath);
            notes.AddRange(File.Exists(logPath) ? File.ReadLines(logPath).TakeLast(20) : []);
            return Result(injected, expected, 0, 0, 0, notes) with { Error = e.Message };
        }
    }

    private FaultResult Result(long injected, ExpectedViews expected, long inView, long lost, long duplicated, List<string> notes) =>
        new(Fault, (int)injected, expected.Events, inView, lost, duplicated) { Notes = notes };

    private static (HostileMessage Message, int? Partition) Take(List<(Func<HostileMessage> Make, int? Partition)> specials, Random random)
    {
        var i = random.Next(specials.Count);
        var (make, partition) = specials[i];
        specials.RemoveAt(i);
        return (make(), partition);
    }

    /// <summary>Polls until the speed group committed everything; fails at once if the speed process died.</summary>
    private static async Task WaitCaughtUpAsync(GroupProgress progress, LambdaProcess speed, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        long lag = -1;
        while (true)
        {
            if (speed.HasExited)
            {
                throw new InvalidOperationException($"the speed process died (exit code {speed.ExitCode}) with {lag} records not committed; see {speed.LogPath}");
            }

            try
            {
                lag = progress.Lag();
                if (lag == 0)
                {
                    return;
                }
            }
            catch (KafkaException)
            {
                // Not answered yet; ask again.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the speed layer did not catch up within {timeout}: {lag} records not committed");
            }

            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>Peak resident set size of a process, from <c>/proc/&lt;pid&gt;/status</c> (VmHWM), in MiB.</summary>
    internal static long PeakRssMiB(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                var kb = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return kb / 1024;
            }
        }

        throw new IOException($"/proc/{pid}/status has no VmHWM line");
    }
}

/// <summary>What a fuzz run saw, beyond the report row.</summary>
internal sealed record FuzzObservations(
    int HostileSent, long DeadLetters, int DistinctSources, int Missing, long Duplicates, int NamingValidEvents, long WithoutReason,
    long Truncated, long LargestDeadLetterValue, int ReaderProblems, long PeakRssMiB, bool SpeedExited, TimeSpan Duration);
