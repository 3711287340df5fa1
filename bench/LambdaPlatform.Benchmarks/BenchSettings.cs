using System.Globalization;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// Sizes of a run, from environment variables (defaults are those of a full <c>make bench</c>, ~15–25 minutes on 2 cores).
/// Smaller values make quick runs while developing; every figure still times the same job.
/// </summary>
internal sealed record BenchSettings
{
    /// <summary><c>LAMBDA_BENCH_E2E_ONLY=1</c>: skip the BenchmarkDotNet (one-core) figures.</summary>
    public bool EndToEndOnly { get; init; }

    /// <summary><c>LAMBDA_BENCH_ONLY</c>: comma-separated parts to run (<c>api, speed, archive, peer, freshness, batch, scaling</c>); empty runs all.</summary>
    public IReadOnlySet<string> Only { get; init; } = new HashSet<string>();

    /// <summary><c>LAMBDA_BENCH_REPEATS</c>: repetitions of each end-to-end figure (the median is reported). Default 3.</summary>
    public int Repeats { get; init; } = 3;

    /// <summary>
    /// <c>LAMBDA_BENCH_KAFKA_EVENTS</c>: events of the topic that every Kafka figure reads (bare consumer, speed layer with
    /// 1 and 2 instances, the ClickHouse Kafka peer, the archiver). Default 400,000.
    /// </summary>
    public int KafkaEvents { get; init; } = 400_000;

    /// <summary><c>LAMBDA_BENCH_KAFKA_PARTITIONS</c>: partitions of that topic. Default 8 (the dev broker keeps ~5 MiB per partition).</summary>
    public int KafkaPartitions { get; init; } = 8;

    /// <summary><c>LAMBDA_BENCH_FRESHNESS_SECONDS</c>: how long each freshness run produces at its steady rate. Default 20.</summary>
    public int FreshnessSeconds { get; init; } = 20;

    /// <summary><c>LAMBDA_BENCH_BATCH_EVENTS</c>: events of each day of the batch dataset. Default 10,000,000.</summary>
    public int BatchEventsPerDay { get; init; } = 10_000_000;

    /// <summary><c>LAMBDA_BENCH_BATCH_DAYS</c>: largest day count of the batch scaling figures (1, 2, 4, … up to it). Default 4.</summary>
    public int BatchMaxDays { get; init; } = 4;

    /// <summary><c>LAMBDA_BENCH_API_REQUESTS</c>: requests per API measurement (each concurrency level, each path). Default 2,000.</summary>
    public int ApiRequests { get; init; } = 2_000;

    /// <summary><c>LAMBDA_BENCH_API_CLIENTS</c>: concurrency levels of the API figures. Default 1,16,64.</summary>
    public IReadOnlyList<int> ApiClients { get; init; } = [1, 16, 64];

    /// <summary>One line for the log.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"only [{string.Join(",", Only)}], e2e-only {EndToEndOnly}, repeats {Repeats}, kafka {KafkaEvents:N0} events / {KafkaPartitions} partitions, freshness {FreshnessSeconds} s, batch {BatchEventsPerDay:N0} events/day up to {BatchMaxDays} days, api {ApiRequests:N0} requests at [{string.Join(",", ApiClients)}] clients");

    /// <summary>Whether part <paramref name="name"/> runs.</summary>
    public bool Runs(string name) => Only.Count == 0 || Only.Contains(name);

    /// <summary>Reads the environment; throws naming a bad variable.</summary>
    public static BenchSettings FromEnvironment() => new()
    {
        EndToEndOnly = Environment.GetEnvironmentVariable("LAMBDA_BENCH_E2E_ONLY") == "1",
        Only = (Environment.GetEnvironmentVariable("LAMBDA_BENCH_ONLY") ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.OrdinalIgnoreCase),
        Repeats = Int("LAMBDA_BENCH_REPEATS", 3, 1),
        KafkaEvents = Int("LAMBDA_BENCH_KAFKA_EVENTS", 400_000, 1_000),
        KafkaPartitions = Int("LAMBDA_BENCH_KAFKA_PARTITIONS", 8, 1),
        FreshnessSeconds = Int("LAMBDA_BENCH_FRESHNESS_SECONDS", 20, 5),
        BatchEventsPerDay = Int("LAMBDA_BENCH_BATCH_EVENTS", 10_000_000, 10_000),
        BatchMaxDays = Int("LAMBDA_BENCH_BATCH_DAYS", 4, 1),
        ApiRequests = Int("LAMBDA_BENCH_API_REQUESTS", 2_000, 100),
        ApiClients = (Environment.GetEnvironmentVariable("LAMBDA_BENCH_API_CLIENTS") ?? "1,16,64")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new ArgumentException($"LAMBDA_BENCH_API_CLIENTS: '{s}' is not a positive number"))
            .ToArray(),
    };

    private static int Int(string name, int fallback, int min)
    {
        var text = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }

        return int.TryParse(text.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min
            ? value
            : throw new ArgumentException($"{name}='{text}' must be a whole number of at least {min}");
    }
}
