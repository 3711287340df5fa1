namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>kill -9 of the speed layer, the archiver and the batch job while events flow (being written).</summary>
public sealed class KillScenario : IChaosScenario
{
    /// <inheritdoc />
    public string Fault => "kill -9 speed/archiver/batch";

    /// <inheritdoc />
    public Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken) =>
        throw new NotSupportedException("being written");
}
