using LambdaPlatform.Chaos.Infrastructure;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>The end of a scenario whose faults are over: one clean batch run, then every check.</summary>
/// <param name="View">Every cell of the merged views against the exact answer.</param>
/// <param name="Master">Every master-dataset row against the acknowledged offsets.</param>
/// <param name="StagingTablesLeft">Staging tables still in the server (killed runs leave them; a clean run drops them).</param>
public sealed record FinalCheck(ViewComparison View, MasterComparison Master, int StagingTablesLeft)
{
    /// <summary>
    /// Runs <c>lambda batch run --data <paramref name="data"/></c> against the serving server (it must exit 0), then compares
    /// the merged views with <paramref name="expected"/>, the master dataset with <paramref name="valid"/>, and counts the
    /// staging tables left.
    /// </summary>
    public static async Task<FinalCheck> RunAsync(ServingServer serving, string data, string logPath, IReadOnlyDictionary<string, string> environment,
        ExpectedViews expected, OffsetSet valid, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(serving);
        await using (var batch = LambdaProcess.Start("batch", ["batch", "run", "--data", data], logPath, environment))
        {
            var exit = await batch.WaitAsync(TimeSpan.FromMinutes(10), cancellationToken);
            if (exit != 0)
            {
                throw new InvalidOperationException($"the final batch run failed (exit {exit}):\n{batch.Tail()}");
            }
        }

        var view = await MergedViewCheck.CompareAsync(serving.Client, expected, cancellationToken);
        var master = await MasterDatasetCheck.CompareAsync(data, valid, cancellationToken);
        var staging = (await new StagingProbe(serving.Client).TablesAsync(cancellationToken)).Count;
        return new FinalCheck(view, master, staging);
    }
}
