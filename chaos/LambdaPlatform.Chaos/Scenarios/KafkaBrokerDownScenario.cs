using LambdaPlatform.Kafka;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>
/// The broker goes down for <see cref="ChaosSettings.BrokerOutage"/> while events are produced and consumed (speed
/// layer and archiver running), then comes back on the same port. The idempotent producer keeps and retries what
/// it could not deliver; the consumers reconnect (the speed instance may have been fenced from its group meanwhile)
/// and resume from their commits. Every event must be acknowledged, counted once in the merged views and archived
/// once.
/// </summary>
public sealed class KafkaBrokerDownScenario : IChaosScenario
{
    /// <inheritdoc />
    public string Fault => "kafka: broker down 10 s";

    /// <inheritdoc />
    public async Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var rig = await KafkaRig.StartAsync(settings, "kafka-broker-down", log, cancellationToken);
        rig.StartSpeed("speed-1");
        rig.StartArchiver("archiver-1");

        // Traffic before, during and after the outage: 4 s of it, the outage, 6 s more.
        var lead = TimeSpan.FromSeconds(4);
        var producing = rig.ProduceAsync(lead + settings.BrokerOutage + TimeSpan.FromSeconds(6), cancellationToken);
        await Task.Delay(lead, cancellationToken);
        var acknowledgedBefore = rig.Producer.Expected.Events;
        var clientErrorsBefore = rig.Producer.ClientErrors;
        var warningsBefore = rig.Warnings();
        rig.Broker.SetBrokerDown(DevBroker.AllBrokers);
        rig.Log(FormattableString.Invariant($"broker DOWN after {rig.Sent:N0} events sent, {acknowledgedBefore:N0} acknowledged"));
        await Task.Delay(settings.BrokerOutage, cancellationToken);
        var acknowledgedDuring = rig.Producer.Expected.Events - acknowledgedBefore;
        var producerErrors = rig.Producer.ClientErrors - clientErrorsBefore;
        var consumerWarnings = rig.Warnings() - warningsBefore;
        rig.Broker.SetBrokerUp(DevBroker.AllBrokers);
        rig.Log(FormattableString.Invariant($"broker UP after {settings.BrokerOutage.TotalSeconds:F0} s; {rig.Sent:N0} events sent, {acknowledgedDuring:N0} acknowledged while it was down"));
        await producing;

        // Injected: how often the outage reached the platform's clients while it lasted — errors the producer reported
        // (connection refused, all brokers down) and warnings the speed layer and the archiver logged.
        var injected = (int)producerErrors + consumerWarnings;
        var notes = new List<string>
        {
            FormattableString.Invariant($"broker down {settings.BrokerOutage.TotalSeconds:F0} s; {acknowledgedDuring:N0} acknowledgements arrived while it was down (in flight before it went)"),
            FormattableString.Invariant($"seen by the clients while it was down: {producerErrors} producer errors, {consumerWarnings} warnings of the speed layer and the archiver"),
        };
        var result = await rig.VerifyAsync(Fault, injected, notes, cancellationToken);
        return injected > 0 ? result : result with { Error = result.Error ?? "no client saw the broker go down: the fault was not injected" };
    }
}
