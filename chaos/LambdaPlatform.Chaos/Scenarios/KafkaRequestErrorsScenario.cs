using Confluent.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// Retriable request errors on Produce, Fetch and OffsetCommit, injected again and again while events flow (speed
/// layer and archiver running): the broker answers the next requests of each type with an error picked by the seed
/// (not leader, timed out, not enough replicas, coordinator moved or loading, or a dropped connection), sometimes
/// late. The idempotent producer retries without duplicating, the consumers re-fetch, and a failed commit only
/// means records may be read again, which the sinks absorb. Errors stop a few seconds before the traffic does, so
/// the final commits go through.
/// </summary>
/// <remarks>
/// The injected count is the requests that actually failed, measured with the broker's request tracking: each pushed
/// error is answered to the next request of its type, so after each push the scenario notes how many requests of that
/// type had arrived; replaying the pushes (and the final clear) against the tracked requests in order gives how many
/// requests took an error. A request that raced in between a push and that reading is not counted (the count can only
/// be low, never high).
/// </remarks>
public sealed class KafkaRequestErrorsScenario : IChaosScenario
{
    private static readonly ErrorCode[] ProduceErrors =
    [
        ErrorCode.NotLeaderForPartition, ErrorCode.LeaderNotAvailable, ErrorCode.RequestTimedOut,
        ErrorCode.NotEnoughReplicas, ErrorCode.NotEnoughReplicasAfterAppend, ErrorCode.Local_Transport,
    ];

    // Most are handled inside librdkafka's fetcher (metadata refresh, retry). REQUEST_TIMED_OUT and
    // NETWORK_EXCEPTION, retriable in the Kafka protocol too, are also handed to the application as non-fatal
    // consumer errors (Consume throws) while the fetcher backs off and retries: a consumer must carry on.
    private static readonly ErrorCode[] FetchErrors =
    [
        ErrorCode.NotLeaderForPartition, ErrorCode.LeaderNotAvailable, ErrorCode.ReplicaNotAvailable,
        ErrorCode.KafkaStorageError, ErrorCode.Local_Transport, ErrorCode.RequestTimedOut, ErrorCode.NetworkException,
    ];

    private static readonly ErrorCode[] CommitErrors =
    [
        ErrorCode.GroupLoadInProgress, ErrorCode.GroupCoordinatorNotAvailable, ErrorCode.NotCoordinatorForGroup, ErrorCode.RequestTimedOut,
    ];

    /// <inheritdoc />
    public string Fault => "kafka: request errors on Produce, Fetch, OffsetCommit";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var rig = await KafkaRig.StartAsync(settings, "kafka-request-errors", log, cancellationToken);
        rig.StartSpeed("speed-1");
        rig.StartArchiver("archiver-1");

#pragma warning disable CA5394 // Not security: a seeded, repeatable choice of faults.
        var random = new Random(settings.Seed);
        var faultWindow = TimeSpan.FromSeconds(14);
        var producing = rig.ProduceAsync(TimeSpan.FromSeconds(2) + faultWindow + TimeSpan.FromSeconds(4), cancellationToken);
        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);

        var pushed = new Dictionary<KafkaApiKey, int> { [KafkaApiKey.Produce] = 0, [KafkaApiKey.Fetch] = 0, [KafkaApiKey.OffsetCommit] = 0 };
        var stacks = new RequestErrorLedger();
        rig.Broker.StartRequestTracking();
        var delayed = 0;
        var until = rig.Elapsed + faultWindow;
        rig.Log("injecting request errors");
        for (var round = 0; rig.Elapsed < until; round++)
        {
            foreach (var (api, errors) in new[] { (KafkaApiKey.Produce, ProduceErrors), (KafkaApiKey.Fetch, FetchErrors), (KafkaApiKey.OffsetCommit, CommitErrors) })
            {
                // Commits are rarer than produce and fetch requests (about one a second per consumer): fewer errors.
                var count = api == KafkaApiKey.OffsetCommit ? (round % 3 == 0 ? 1 : 0) : random.Next(1, 4);
                var burst = Enumerable.Range(0, count).Select(_ => errors[random.Next(errors.Length)]).ToArray();
                if (burst.Length == 0)
                {
                    continue;
                }

                if (api != KafkaApiKey.OffsetCommit && random.Next(4) == 0)
                {
                    // A slow failure: the broker answers late (up to 1.5 s), then with the error. Not for commits:
                    // broker-level errors cannot be cleared, and one left over would fail the last commit.
                    rig.Broker.PushBrokerRequestErrors(1, api, TimeSpan.FromMilliseconds(random.Next(100, 1500)), burst);
                    delayed += burst.Length;
                }
                else
                {
                    rig.Broker.PushRequestErrors(api, burst);
                }

                stacks.Pushed(api, burst.Length, rig.Broker.TrackedRequests());

                pushed[api] += burst.Length;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(150, 450)), cancellationToken);
        }
#pragma warning restore CA5394

        // Errors not used yet would only fail requests after the window; drop them (broker-level ones are few and used first).
        rig.Broker.ClearRequestErrors(KafkaApiKey.Produce);
        rig.Broker.ClearRequestErrors(KafkaApiKey.Fetch);
        rig.Broker.ClearRequestErrors(KafkaApiKey.OffsetCommit);
        stacks.Cleared([KafkaApiKey.Produce, KafkaApiKey.Fetch, KafkaApiKey.OffsetCommit], rig.Broker.TrackedRequests());
        var failed = stacks.Failed(rig.Broker.TrackedRequests());
        rig.Broker.StopRequestTracking();
        var injected = failed.Values.Sum();
        rig.Log(FormattableString.Invariant(
            $"stopped injecting: {pushed.Values.Sum()} errors pushed (Produce {pushed[KafkaApiKey.Produce]}, Fetch {pushed[KafkaApiKey.Fetch]}, OffsetCommit {pushed[KafkaApiKey.OffsetCommit]}; {delayed} of them delayed); requests that failed: {injected}"));
        await producing;

        var notes = new List<string>
        {
            FormattableString.Invariant($"errors pushed: Produce {pushed[KafkaApiKey.Produce]}, Fetch {pushed[KafkaApiKey.Fetch]}, OffsetCommit {pushed[KafkaApiKey.OffsetCommit]} ({delayed} answered late); cluster-wide ones still unused at the end were cleared"),
            FormattableString.Invariant($"requests that failed (broker request tracking): Produce {failed[KafkaApiKey.Produce]}, Fetch {failed[KafkaApiKey.Fetch]}, OffsetCommit {failed[KafkaApiKey.OffsetCommit]}"),
        };
        return await rig.VerifyAsync(Fault, injected, notes, cancellationToken);
    }
}

/// <summary>
/// Which tracked requests took an injected error: per request type, a pool of pending errors that grows by each push
/// (from the first request tracked after it) and empties at a clear; each later request of the type takes one.
/// </summary>
internal sealed class RequestErrorLedger
{
    private readonly List<(KafkaApiKey Api, int From, int Errors)> _events = [];

    /// <summary><paramref name="errors"/> errors were pushed for <paramref name="api"/>; <paramref name="tracked"/> is read right after.</summary>
    public void Pushed(KafkaApiKey api, int errors, IReadOnlyList<DevBrokerRequest> tracked) => _events.Add((api, tracked.Count(r => r.ApiKey == api), errors));

    /// <summary>The pending errors of <paramref name="apis"/> were cleared; <paramref name="tracked"/> is read right after.</summary>
    public void Cleared(IEnumerable<KafkaApiKey> apis, IReadOnlyList<DevBrokerRequest> tracked)
    {
        foreach (var api in apis)
        {
            _events.Add((api, tracked.Count(r => r.ApiKey == api), -1));
        }
    }

    /// <summary>Requests that took an error, per type.</summary>
    public Dictionary<KafkaApiKey, int> Failed(IReadOnlyList<DevBrokerRequest> tracked)
    {
        var failed = new Dictionary<KafkaApiKey, int>();
        foreach (var api in _events.Select(e => e.Api).Distinct())
        {
            var events = _events.Where(e => e.Api == api).ToList();
            var requests = tracked.Count(r => r.ApiKey == api);
            var pool = 0;
            var next = 0;
            var count = 0;
            for (var i = 0; i < requests; i++)
            {
                for (; next < events.Count && events[next].From <= i; next++)
                {
                    pool = events[next].Errors < 0 ? 0 : pool + events[next].Errors;
                }

                if (pool > 0)
                {
                    pool--;
                    count++;
                }
            }

            failed[api] = count;
        }

        return failed;
    }
}
