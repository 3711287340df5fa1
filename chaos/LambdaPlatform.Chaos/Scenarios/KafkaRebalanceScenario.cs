using System.Diagnostics;
using System.Globalization;
using LambdaPlatform.Chaos.Infrastructure;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The speed layer's group changes while events flow: a second <c>lambda speed</c> process joins group
/// <c>speed</c> (partitions move to it), leaves gracefully (SIGTERM: it closes its consumer and its partitions move
/// back), a third joins, and then the first (an owner of partitions since the start) is killed with SIGKILL at a
/// moment picked by the seed: it leaves nothing behind, and its partitions stay silent until the broker's session
/// timeout gives them to the survivor, which reads them again from the last commit. Each event must still be counted
/// once in the merged views although several instances wrote its partition, and archived once: a second archiver
/// joins group <c>archive</c> at the same time and leaves gracefully with speed-2.
/// </summary>
/// <remarks>
/// The injected count is measured from the members' own <c>/metrics</c> (their assigned partitions, polled every
/// 200 ms): a join counts when the joining instance received at least one partition; a leave counts when the leaver
/// ended (exit 0 on SIGTERM, 137 on SIGKILL) and the survivors then held every partition of the topic.
/// </remarks>
public sealed class KafkaRebalanceScenario : IChaosScenario
{
    private static readonly TimeSpan Observe = TimeSpan.FromSeconds(45);

    /// <inheritdoc />
    public string Fault => "kafka: rebalance";

    /// <summary>Partitions each joining instance received, by name (for tests).</summary>
    public IReadOnlyDictionary<string, int> PartitionsReceived { get; private set; } = new Dictionary<string, int>();

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var rig = await KafkaRig.StartAsync(settings, "kafka-rebalance", log, cancellationToken, sessionTimeout: TimeSpan.FromSeconds(3));
        await using var watch = new MembershipWatch();
        var first = rig.StartSpeed("speed-1");
        var firstArchiver = rig.StartArchiver("archiver-1");
        watch.Add(first, rig.Probe(first));
        watch.Add(firstArchiver, rig.Probe(firstArchiver));
        var producing = rig.ProduceAsync(TimeSpan.FromSeconds(26), cancellationToken);
        var traffic = Stopwatch.StartNew();
        var seen = new List<string>();
        var problems = new List<string>();

        async Task ExpectAsync(string what, Func<bool> condition)
        {
            if (await MembershipWatch.WaitAsync(condition, Observe, cancellationToken))
            {
                seen.Add(what);
                rig.Log("seen: " + what);
            }
            else
            {
                problems.Add("not seen within " + Observe.TotalSeconds.ToString("F0", CultureInfo.InvariantCulture) + " s: " + what + " (" + watch.Describe() + ")");
            }
        }

        await ExpectAsync("speed-1 and archiver-1 own every partition", () => watch.Assigned(first) == KafkaRig.Partitions && watch.Assigned(firstArchiver) == KafkaRig.Partitions);
        await DelayUntilAsync(traffic, TimeSpan.FromSeconds(3), cancellationToken);
        var second = rig.StartSpeed("speed-2"); // join
        var secondArchiver = rig.StartArchiver("archiver-2"); // the archive group changes too
        watch.Add(second, rig.Probe(second));
        watch.Add(secondArchiver, rig.Probe(secondArchiver));
        await ExpectAsync("speed-2 joined and received partitions", () => watch.MaxAssigned(second) > 0);
        await ExpectAsync("archiver-2 joined and received partitions", () => watch.MaxAssigned(secondArchiver) > 0);

        await DelayUntilAsync(traffic, TimeSpan.FromSeconds(11), cancellationToken);
        await rig.StopGracefullyAsync(second, cancellationToken); // graceful leave
        await rig.StopGracefullyAsync(secondArchiver, cancellationToken);
        await ExpectAsync("speed-2 left (SIGTERM, exit 0) and speed-1 took its partitions back", () => second.ExitCode == 0 && watch.Assigned(first) == KafkaRig.Partitions);
        await ExpectAsync("archiver-2 left (SIGTERM, exit 0) and archiver-1 took its partitions back", () => secondArchiver.ExitCode == 0 && watch.Assigned(firstArchiver) == KafkaRig.Partitions);
        var third = rig.StartSpeed("speed-3"); // join
        watch.Add(third, rig.Probe(third));
        await ExpectAsync("speed-3 joined and received partitions", () => watch.MaxAssigned(third) > 0);

        // SIGKILL speed-1: it has been in the group from the start and never left, so it owns partitions whatever
        // the assignor did; speed-3 gets them only after the broker's session timeout. The moment comes from the seed.
#pragma warning disable CA5394 // Not security: a seeded, repeatable choice.
        var killAt = TimeSpan.FromSeconds(19 + new Random(settings.Seed).NextDouble() * 3);
#pragma warning restore CA5394
        await DelayUntilAsync(traffic, killAt, cancellationToken);
        var ownedAtKill = watch.Assigned(first);
        await rig.KillAsync(first); // leave without a word
        await ExpectAsync(string.Create(CultureInfo.InvariantCulture, $"speed-1 died (SIGKILL, exit 137, owning {ownedAtKill} partitions) and speed-3 took every partition"),
            () => first.ExitCode == 137 && ownedAtKill > 0 && watch.Assigned(third) == KafkaRig.Partitions);
        await producing;

        PartitionsReceived = new Dictionary<string, int>
        {
            ["speed-2"] = watch.MaxAssigned(second),
            ["archiver-2"] = watch.MaxAssigned(secondArchiver),
            ["speed-3"] = watch.MaxAssigned(third),
        };
        var joinsAndLeaves = seen.Count(s => !s.StartsWith("speed-1 and archiver-1 own", StringComparison.Ordinal)); // that one is the starting state
        List<string> notes =
        [
            FormattableString.Invariant($"membership changes seen on the members' /metrics: {joinsAndLeaves} (joins and leaves); partitions received by joining instances: {string.Join(", ", PartitionsReceived.Select(p => $"{p.Key} {p.Value}"))}"),
            .. seen.Select(s => "  seen: " + s),
            FormattableString.Invariant($"speed-1 was killed at {killAt.TotalSeconds:F1} s of traffic; session timeout {rig.SessionTimeout.TotalSeconds:F0} s"),
        ];
        var result = await rig.VerifyAsync(Fault, joinsAndLeaves, notes, cancellationToken);
        return problems.Count == 0 ? result : result with { Error = result.Error ?? string.Join("\n", problems) };
    }

    private static async Task DelayUntilAsync(Stopwatch traffic, TimeSpan at, CancellationToken cancellationToken)
    {
        var wait = at - traffic.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }
    }

    /// <summary>Polls the members' metrics every 200 ms: the partitions each holds now and the most it held.</summary>
    private sealed class MembershipWatch : IAsyncDisposable
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<LambdaProcess, (MetricsProbe Probe, int Now, int Max)> _members = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public MembershipWatch() => _loop = Task.Run(LoopAsync);

        public void Add(LambdaProcess process, MetricsProbe probe)
        {
            lock (_lock)
            {
                _members[process] = (probe, 0, 0);
            }
        }

        public int Assigned(LambdaProcess process)
        {
            lock (_lock)
            {
                return _members[process].Now;
            }
        }

        public int MaxAssigned(LambdaProcess process)
        {
            lock (_lock)
            {
                return _members[process].Max;
            }
        }

        public string Describe()
        {
            lock (_lock)
            {
                return string.Join(", ", _members.Select(m => FormattableString.Invariant($"{m.Key.Name} holds {m.Value.Now} (most {m.Value.Max})")));
            }
        }

        public static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var waited = Stopwatch.StartNew();
            while (waited.Elapsed < timeout)
            {
                if (condition())
                {
                    return true;
                }

                await Task.Delay(100, cancellationToken);
            }

            return condition();
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }

        private async Task LoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                List<(LambdaProcess Process, MetricsProbe Probe)> members;
                lock (_lock)
                {
                    members = [.. _members.Select(m => (m.Key, m.Value.Probe))];
                }

                foreach (var (process, probe) in members)
                {
                    // A member that ended holds nothing; one that does not answer yet keeps its last reading.
                    var now = process.HasExited ? 0 : (await probe.ReadAsync(_stop.Token)) is { What: "/metrics" } w ? w.Partitions.Count : -1;
                    lock (_lock)
                    {
                        var m = _members[process];
                        _members[process] = now < 0 ? m : (m.Probe, now, Math.Max(m.Max, now));
                    }
                }

                await Task.Delay(200, _stop.Token);
            }
        }
    }
}
