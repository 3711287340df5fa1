using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using LambdaPlatform.Benchmarks;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Schemas.Events;

// `make bench`: runs every benchmark, prints a table of figures and writes artifacts/bench.json.
// Sizes come from LAMBDA_BENCH_* environment variables (see BenchSettings); LAMBDA_BENCH_E2E_ONLY=1 skips the one-core figures.
if (args.Length >= 2 && args[0] == ApiEndToEnd.ChildFlag)
{
    return await ApiEndToEnd.ChildAsync(args[1]);
}

if (args.Length >= 1 && args[0] == ClickHouseKafkaPeer.ChildFlag)
{
    return await ClickHouseKafkaPeer.ChildAsync(args[1..]);
}

var settings = BenchSettings.FromEnvironment();
var output = args.Length > 0 ? args[0] : Path.Combine("artifacts", "bench.json");
var figures = new List<BenchFigure>();
var started = DateTime.UtcNow;
Harness.Log($"settings: {settings.Describe()}");

// In-process: no per-benchmark rebuild of the solution; the CPU benchmarks are pinned to one core here.
if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows())
{
    System.Diagnostics.Process.GetCurrentProcess().ProcessorAffinity = 1;
}

var config = ManualConfig.Create(DefaultConfig.Instance)
    .AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(15).WithLaunchCount(1).WithToolchain(InProcessEmitToolchain.Instance))
    .WithOptions(ConfigOptions.DisableLogFile)
    .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "lambdaplatform-bdn"));

if (!settings.EndToEndOnly)
{
    var decode = BenchmarkRunner.Run<DecodeBenchmarks>(config);
    var parse = PerSecond(decode, nameof(DecodeBenchmarks.Parse), "parse.events_per_s");
    figures.Add(parse);
    figures.Add(PerSecond(decode, nameof(DecodeBenchmarks.DecodeAndValidate), "validate.events_per_s").ComparedWith(parse));

    var speed = BenchmarkRunner.Run<SpeedBenchmarks>(config);
    figures.Add(PerSecond(speed, nameof(SpeedBenchmarks.DecodeDedupeAggregate), "speed.cpu.events_per_s").ComparedWith(parse));

    // The archiver's encoder alone (no Kafka, no decoding, no disk): columns + Parquet into memory.
    var archive = BenchmarkRunner.Run<ArchiveBenchmarks>(config);
    var snappy = PerSecond(archive, nameof(ArchiveBenchmarks.WriteSnappy), "archive.encode.snappy.events_per_s");
    figures.Add(snappy);
    figures.Add(PerSecond(archive, nameof(ArchiveBenchmarks.WriteZstd), "archive.encode.events_per_s").ComparedWith(snappy));
    figures.Add(new BenchFigure("archive.bytes_per_event", await ArchiveBenchmarks.MeasureBytesPerEventAsync(LambdaPlatform.Batch.Master.MasterCompression.Zstd), "bytes"));
}

// End to end (several threads each): run on every core, then pin again.
using (Harness.AllCores())
{
    if (settings.Runs("api"))
    {
        // The platform host opens its own chDB: a child process, so this one keeps a single chDB data path.
        figures.AddRange(await ApiEndToEnd.RunInChildAsync());
    }

    var chdbPath = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-chdb-" + Guid.NewGuid().ToString("N"));
    var schemas = EventSchemaRegistry.LoadDefault();
    await using (var chdb = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = chdbPath }))
    {
        if (settings.Runs("speed") || settings.Runs("peer") || settings.Runs("archive") || settings.Runs("freshness"))
        {
            figures.AddRange(await KafkaFiguresAsync(chdb, schemas, settings));
        }

        if (settings.Runs("batch") || settings.Runs("scaling"))
        {
            figures.AddRange(await new BatchEndToEnd(chdb, schemas, settings).RunAsync());
        }
    }

    Harness.DeleteFolder(chdbPath);
}

figures = BenchMachine.Stamp(figures);
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
await File.WriteAllTextAsync(output, JsonSerializer.Serialize(figures, new JsonSerializerOptions { WriteIndented = true }));

Console.WriteLine();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"commit {figures.FirstOrDefault()?.Commit ?? BenchMachine.Commit()}, {Environment.ProcessorCount} cores, {BenchMachine.MemoryGiB():0.0} GiB, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, took {(DateTime.UtcNow - started).TotalMinutes:0.0} min"));
Console.WriteLine($"{"figure",-40} {"value",16} {"unit",-9} {"baseline / peer",-40} {"ratio",8}");
foreach (var f in figures)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{f.Name,-40} {f.Value,16:N2} {f.Unit,-9} {f.Baseline ?? "-",-40} {(f.Ratio is { } r ? r.ToString("0.000", CultureInfo.InvariantCulture) : "-"),8}{(f.Warning is null ? string.Empty : "  !! WARNING (below)")}"));
}

foreach (var f in figures.Where(f => f.Warning is not null))
{
    Console.WriteLine($"!! WARNING {f.Name}: {f.Warning}");
}

Console.WriteLine($"wrote {Path.GetFullPath(output)}");
return 0;

static BenchFigure PerSecond(Summary summary, string method, string name)
{
    var report = summary.Reports.Single(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method);
    var medianNs = report.ResultStatistics?.Median ?? throw new InvalidOperationException($"benchmark {method} produced no result");
    return new BenchFigure(name, 1e9 / medianNs, "events/s");
}

// Every Kafka figure reads the same topic; each repetition runs them one after another, so noise spreads over all of them.
static async Task<List<BenchFigure>> KafkaFiguresAsync(ChDbClickHouse chdb, EventSchemaRegistry schemas, BenchSettings settings)
{
    var figures = new List<BenchFigure>();
    await using var broker = DevBroker.Start(new DevBrokerOptions());
    var speed = new SpeedEndToEnd(chdb, schemas, broker);
    if (settings.Runs("speed") || settings.Runs("peer") || settings.Runs("archive"))
    {
        var topic = BenchTopic.Create(broker, settings.KafkaEvents, settings.KafkaPartitions);
        var archiver = new ArchiveEndToEnd(chdb, schemas, broker);
        List<double> bare = [], e2e = [], e2e2 = [], peer = [], archive = [], flushShare = [];
        var warnings = new List<string>();
        for (var r = 0; r < settings.Repeats; r++)
        {
            bare.Add(topic.Count / topic.ConsumeBare(broker).TotalSeconds);
            var line = $"run {r + 1}: bare {bare[^1]:N0}/s";
            if (settings.Runs("speed"))
            {
                foreach (var (instances, values) in new[] { (1, e2e), (2, e2e2) })
                {
                    var (elapsed, flushSeconds, warning) = await speed.ConsumeAsync(topic, instances);
                    values.Add(topic.Count / elapsed.TotalSeconds);
                    if (instances == 1)
                    {
                        flushShare.Add(flushSeconds / elapsed.TotalSeconds);
                    }

                    if (warning is not null)
                    {
                        warnings.Add($"run {r + 1}: {warning}");
                    }
                }

                line += $", speed {e2e[^1]:N0}/s, 2 instances {e2e2[^1]:N0}/s";
            }

            if (settings.Runs("peer"))
            {
                var result = await ClickHouseKafkaPeer.RunInChildAsync(broker.BootstrapServers, topic);
                peer.Add(topic.Count / result.Seconds);
                line += $", ClickHouse Kafka peer {peer[^1]:N0}/s ({result.Detail})";
            }

            if (settings.Runs("archive"))
            {
                archive.Add(topic.Count / (await archiver.RunAsync(topic)).TotalSeconds);
                line += $", archive {archive[^1]:N0}/s";
            }

            Harness.Log(line + $" over {topic.Count:N0} events");
        }

        var bareFigure = new BenchFigure("consume.bare.events_per_s", Harness.Median(bare), "events/s");
        figures.Add(bareFigure);
        BenchFigure? peerFigure = null;
        if (peer.Count > 0)
        {
            peerFigure = new BenchFigure("peer.clickhouse_kafka.events_per_s", Harness.Median(peer), "events/s").ComparedWith(bareFigure);
            figures.Add(peerFigure);
        }

        if (e2e.Count > 0)
        {
            var warning = warnings.Count == 0 ? null : string.Join("; ", warnings);
            var e2eFigure = new BenchFigure("speed.e2e.events_per_s", Harness.Median(e2e), "events/s").ComparedWith(bareFigure).WarnedThat(warning);
            figures.Add(e2eFigure);
            if (peerFigure is not null)
            {
                figures.Add(new BenchFigure("speed.e2e.vs_peer", e2eFigure.Value, "events/s").ComparedWith(peerFigure));
            }

            // Where the time of one instance goes: the share of its wall time during which a batch was being written (aggregating,
            // inserting raw events and views into ClickHouse, recording progress). The consumer reads and decodes the next batch
            // meanwhile, so near 1 the writes bound the throughput, well below 1 consuming and decoding do.
            figures.Add(new BenchFigure("speed.e2e.flush_share", Harness.Median(flushShare), "fraction"));
            figures.Add(new BenchFigure("speed.e2e.2_instances.events_per_s", Harness.Median(e2e2), "events/s").ComparedWith(e2eFigure).WarnedThat(warning));
        }

        if (archive.Count > 0)
        {
            figures.Add(new BenchFigure("archive.events_per_s", Harness.Median(archive), "events/s").ComparedWith(bareFigure));
        }
    }

    if (settings.Runs("freshness"))
    {
        foreach (var (rate, prefix) in new[] { (50_000, "speed.freshness"), (20_000, "speed.freshness.20k") })
        {
            var (p50, p99, n, reached) = await speed.FreshnessAsync(rate, TimeSpan.FromSeconds(settings.FreshnessSeconds));
            Harness.Log($"freshness at {rate:N0}/s over {n:N0} events after warm-up: p50 {p50:0.000} s, p99 {p99:0.000} s");
            var warning = reached < rate * 0.95 ? $"the producer reached only {reached:N0} of {rate:N0} events/s" : null;
            if (warning is not null)
            {
                Harness.Warn($"{prefix}: {warning}");
            }

            figures.Add(new BenchFigure(prefix + ".p99_s", p99, "s").WarnedThat(warning));
            figures.Add(new BenchFigure(prefix + ".p50_s", p50, "s").WarnedThat(warning));
        }
    }

    return figures;
}
