namespace LambdaPlatform.Chaos;

/// <summary>One fault of the chaos suite, injected against real components.</summary>
public interface IChaosScenario
{
    /// <summary>The fault's name in the report.</summary>
    string Fault { get; }

    /// <summary>Starts what it needs, injects the fault, verifies the output and stops everything again.</summary>
    /// <param name="settings">Sizes, outage lengths and seed.</param>
    /// <param name="log">Progress lines (the seed first).</param>
    /// <param name="cancellationToken">Stops the run.</param>
    Task<FaultResult> RunAsync(ChaosSettings settings, TextWriter log, CancellationToken cancellationToken);
}
