namespace LambdaPlatform.Chaos;

/// <summary>One row of the chaos report: a fault, how often it was injected, and what survived it.</summary>
/// <param name="Fault">What was done, e.g. "kill -9 speed/archiver/batch".</param>
/// <param name="Injected">How many times the fault was injected, as measured (kills that landed, requests that failed, members seen joining or leaving…), never a constant.</param>
/// <param name="EventsIn">Valid events the platform accepted (acknowledged by Kafka).</param>
/// <param name="EventsInMergedView">Events counted by the merged view after the batch (or by the checked output).</param>
/// <param name="Lost">Events missing from the output, summed over buckets.</param>
/// <param name="Duplicated">Events counted more than once, summed over buckets.</param>
public sealed record FaultResult(string Fault, int Injected, long EventsIn, long EventsInMergedView, long Lost, long Duplicated)
{
    /// <summary>What else was observed (health went red, memory peak, first mismatches…), for the log.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Why the scenario could not finish (an exception, a deadline), or null.</summary>
    public string? Error { get; init; }

    /// <summary>Cells of the merged views compared with the exact answer (every measure of every row), or null when the fault checks no view.</summary>
    public long? CellsCompared { get; init; }

    /// <summary>Cells outside their bound (exact below W, the sketch's bound above it), or null when the fault checks no view.</summary>
    public long? CellsWrong { get; init; }

    /// <summary>Kill fault only: kills whose victim had partitions and unflushed or unpublished events (or a day mid-load) at the moment of the kill.</summary>
    public int? KillsOnWorkInFlight { get; init; }

    /// <summary>Events refused by the platform and found in <c>events.dlq</c> with their reason (not lost: the platform's rule refused them), or null.</summary>
    public long? DeadLettered { get; init; }

    /// <summary>
    /// Figures particular to the fault (latency percentiles, lag growth, runs per tick…), written to <c>chaos.json</c> as extra fields of
    /// the fault's row; empty for most faults.
    /// </summary>
    public IReadOnlyDictionary<string, double> Figures { get; init; } = new Dictionary<string, double>();

    /// <summary>Finished, nothing lost, nothing double counted, every compared cell within its bound.</summary>
    public bool Clean => Error is null && Lost == 0 && Duplicated == 0 && EventsIn == EventsInMergedView && (CellsWrong ?? 0) == 0;
}
