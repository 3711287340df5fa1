using System.Globalization;
using System.Text.RegularExpressions;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>What a process had in hand at one moment, as it reports it.</summary>
/// <param name="Partitions">Kafka partitions assigned to it (none for a batch run).</param>
/// <param name="Buffered">Events read and not yet durable (flushed or published); for a batch run, rows loaded into its staging table.</param>
/// <param name="What">Where the figures come from, e.g. "/metrics" or "staging table checkout_revenue_batch_staging_ab12".</param>
/// <param name="Busy">Whether it had work in flight: partitions and unflushed events, or a day mid-load.</param>
public sealed record WorkInFlight(IReadOnlyList<int> Partitions, long Buffered, string What, bool Busy)
{
    /// <summary>Nothing known (the endpoint did not answer).</summary>
    public static WorkInFlight Unknown(string why) => new([], 0, why, false);

    /// <inheritdoc />
    public override string ToString() => Partitions.Count == 0 && Buffered == 0 && !Busy
        ? $"idle ({What})"
        : string.Create(CultureInfo.InvariantCulture, $"partitions [{Ranges(Partitions)}], {Buffered:N0} in flight ({What})");

    /// <summary>Partitions as ranges, e.g. <c>0-3,7</c>.</summary>
    private static string Ranges(IReadOnlyList<int> partitions)
    {
        var parts = new List<string>();
        for (var i = 0; i < partitions.Count; i++)
        {
            var j = i;
            while (j + 1 < partitions.Count && partitions[j + 1] == partitions[j] + 1)
            {
                j++;
            }

            parts.Add(j == i ? partitions[i].ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{partitions[i]}-{partitions[j]}"));
            i = j;
        }

        return string.Join(',', parts);
    }
}

/// <summary>
/// Reads a <c>lambda speed --http</c> or <c>lambda archive --http</c> process's work in flight from its Prometheus
/// <c>/metrics</c>: <c>&lt;prefix&gt;_assigned_partitions{partition="P"}</c> and <c>&lt;prefix&gt;_buffered_events</c>. The
/// exporter caches a scrape for up to 300 ms, so a reading is at most that old.
/// </summary>
/// <param name="port">The process's HTTP port (on 127.0.0.1).</param>
/// <param name="prefix"><c>lambda_speed</c> or <c>lambda_archive</c>.</param>
public sealed partial class MetricsProbe(int port, string prefix)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    /// <summary>The <c>/metrics</c> address.</summary>
    public Uri Url { get; } = new($"http://127.0.0.1:{port}/metrics");

    /// <summary>The <c>/health</c> address.</summary>
    public Uri HealthUrl { get; } = new($"http://127.0.0.1:{port}/health");

    /// <summary>Reads the process's metrics now (or <see cref="WorkInFlight.Unknown"/> when it does not answer).</summary>
    public async Task<WorkInFlight> ReadAsync(CancellationToken cancellationToken)
    {
        string text;
        try
        {
            text = await Http.GetStringAsync(Url, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            return WorkInFlight.Unknown("no answer: " + e.Message);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return WorkInFlight.Unknown("no answer within 5 s");
        }

        return Parse(text, prefix);
    }

    /// <summary>Reads one counter or gauge (summed over its label sets).</summary>
    public async Task<double> MetricAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return Scenarios.OutageProbes.MetricSum(await Http.GetStringAsync(Url, cancellationToken), name);
        }
        catch (HttpRequestException)
        {
            return double.NaN;
        }
    }

    /// <summary>Parses Prometheus text (exposed for tests).</summary>
    internal static WorkInFlight Parse(string prometheusText, string prefix)
    {
        var partitions = new SortedSet<int>();
        foreach (var line in prometheusText.Split('\n'))
        {
            if (line.StartsWith(prefix + "_assigned_partitions{", StringComparison.Ordinal)
                && PartitionLabel().Match(line) is { Success: true } m
                && line.TrimEnd().EndsWith(" 1", StringComparison.Ordinal))
            {
                partitions.Add(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        }

        var buffered = (long)Scenarios.OutageProbes.MetricSum(prometheusText, prefix + "_buffered_events");
        return new WorkInFlight([.. partitions], buffered, "/metrics", partitions.Count > 0 && buffered > 0);
    }

    [GeneratedRegex("partition=\"(\\d+)\"")]
    private static partial Regex PartitionLabel();
}

/// <summary>
/// Sees a batch run's work in flight from the serving ClickHouse: a run loads each (view, day) into a staging table
/// <c>&lt;view&gt;_batch_staging_&lt;run&gt;</c>, swaps it in with <c>REPLACE PARTITION</c> and drops it. A staging table that
/// was not there before the run started is that run's day mid-load; if it is still there after the run was killed, the
/// kill provably landed between its creation and its drop.
/// </summary>
/// <param name="clickHouse">The serving ClickHouse.</param>
public sealed class StagingProbe(IClickHouse clickHouse)
{
    /// <summary>Staging tables now.</summary>
    public async Task<IReadOnlySet<string>> TablesAsync(CancellationToken cancellationToken) =>
        (await MergedViewCheck.RowsAsync(clickHouse, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_staging\\_%'", cancellationToken))
        .Select(r => r[0]).ToHashSet(StringComparer.Ordinal);

    /// <summary>The work in flight of a run started when <paramref name="before"/> were the staging tables.</summary>
    public async Task<WorkInFlight> ReadAsync(IReadOnlySet<string> before, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(before);
        var mine = (await TablesAsync(cancellationToken)).Where(t => !before.Contains(t)).Order(StringComparer.Ordinal).ToList();
        if (mine.Count == 0)
        {
            return new WorkInFlight([], 0, "no staging table of this run", false);
        }

        long rows = 0;
        try
        {
            rows = (await MergedViewCheck.RowsAsync(clickHouse, $"SELECT count() FROM {mine[^1]}", cancellationToken)).Select(r => long.Parse(r[0], CultureInfo.InvariantCulture)).Sum();
        }
        catch (ClickHouseException)
        {
            // Dropped between the two queries: the run moved on.
        }

        return new WorkInFlight([], rows, $"staging table {mine[^1]}, {rows:N0} rows loaded", true);
    }
}
