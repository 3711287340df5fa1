using System.Diagnostics;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The speed layer's group changes while events flow: a second <c>lambda speed</c> process joins group
/// <c>speed</c> (partitions move to it), leaves gracefully (SIGTERM: it closes its consumer and its partitions move
/// back), a third joins, and then the first (an owner of partitions since the start) is killed with SIGKILL at a
/// moment picked by the seed: it leaves nothing behind, and its partitions stay silent until the broker's session
/// timeout gives them to the survivor, which reads them again from the last commit. Each event must still be counted once in the merged
/// views although several instances wrote its partition, and archived once: a second archiver joins group
/// <c>archive</c> at the same time and leaves gracefully with speed-2.
/// </summary>
public sealed class KafkaRebalanceScenario : IChaosScenario
{
    /// <inheritdoc />
    public string Fault => "kafka: rebalance";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var rig = await KafkaRig.StartAsync(settings, "kafka-rebalance", log, cancellationToken);
        var first = rig.StartSpeed("speed-1");
        rig.StartArchiver("archiver-1");
        var producing = rig.ProduceAsync(TimeSpan.FromSeconds(26), cancellationToken);
        var traffic = Stopwatch.StartNew();

        await DelayUntilAsync(traffic, TimeSpan.FromSeconds(3), cancellationToken);
        var second = rig.StartSpeed("speed-2"); // join
        var secondArchiver = rig.StartArchiver("archiver-2"); // the archive group changes too
        await DelayUntilAsync(traffic, TimeSpan.FromSeconds(11), cancellationToken);
        await rig.StopGracefullyAsync(second, cancellationToken); // graceful leave
        await rig.StopGracefullyAsync(secondArchiver, cancellationToken);
        rig.StartSpeed("speed-3"); // join

        // SIGKILL speed-1: it has been in the group from the start and never left, so it owns partitions whatever
        // the assignor did; speed-3 gets them only after the broker's session timeout. The moment comes from the seed.
#pragma warning disable CA5394 // Not security: a seeded, repeatable choice.
        var killAt = TimeSpan.FromSeconds(19 + new Random(settings.Seed).NextDouble() * 3);
#pragma warning restore CA5394
        await DelayUntilAsync(traffic, killAt, cancellationToken);
        await rig.KillAsync(first); // leave without a word
        await producing;

        var notes = new List<string>
        {
            FormattableString.Invariant($"speed-2 joined and left on SIGTERM (exit code {second.ExitCode}); speed-3 joined; speed-1 was killed (SIGKILL) at {killAt.TotalSeconds:F1} s of traffic, speed-3 took over"),
            $"archiver-2 joined group archive and left on SIGTERM (exit code {secondArchiver.ExitCode}); archiver-1 took its partitions back",
        };
        var result = await rig.VerifyAsync(Fault, 6, notes, cancellationToken);
        foreach (var left in new[] { second, secondArchiver })
        {
            if (left.ExitCode != 0)
            {
                return result with { Error = result.Error ?? $"{left.Name} did not stop cleanly on SIGTERM (exit code {left.ExitCode}):\n{left.Tail()}" };
            }
        }

        return result;
    }

    private static async Task DelayUntilAsync(Stopwatch traffic, TimeSpan at, CancellationToken cancellationToken)
    {
        var wait = at - traffic.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }
    }
}
