using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using LambdaPlatform.Benchmarks;

// `make bench`: runs every benchmark, prints a table of figures and writes artifacts/bench.json.
if (args.Length == 2 && args[0] == ApiEndToEnd.ChildFlag)
{
    return await ApiEndToEnd.ChildAsync(args[1]);
}

var output = args.Length > 0 ? args[0] : Path.Combine("artifacts", "bench.json");
var figures = new List<BenchFigure>();

// In-process: no per-benchmark rebuild of the solution; the CPU benchmarks are pinned to one core here.
if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows())
{
    System.Diagnostics.Process.GetCurrentProcess().ProcessorAffinity = 1;
}

var config = ManualConfig.Create(DefaultConfig.Instance)
    .AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(15).WithLaunchCount(1).WithToolchain(InProcessEmitToolchain.Instance))
    .WithOptions(ConfigOptions.DisableLogFile)
    .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "lambdaplatform-bdn"));

// LAMBDA_BENCH_E2E_ONLY=1 skips the BenchmarkDotNet figures (quick runs of the end-to-end harnesses).
if (Environment.GetEnvironmentVariable("LAMBDA_BENCH_E2E_ONLY") != "1")
{
    var decode = BenchmarkRunner.Run<DecodeBenchmarks>(config);
    var parse = PerSecond(decode, nameof(DecodeBenchmarks.Parse), "parse.events_per_s");
    figures.Add(parse);
    figures.Add(PerSecond(decode, nameof(DecodeBenchmarks.DecodeAndValidate), "validate.events_per_s").ComparedWith(parse));

    var speed = BenchmarkRunner.Run<SpeedBenchmarks>(config);
    figures.Add(PerSecond(speed, nameof(SpeedBenchmarks.DecodeDedupeAggregate), "speed.cpu.events_per_s").ComparedWith(parse));

    var archive = BenchmarkRunner.Run<ArchiveBenchmarks>(config);
    var snappy = PerSecond(archive, nameof(ArchiveBenchmarks.WriteSnappy), "archive.snappy.events_per_s");
    figures.Add(snappy);
    figures.Add(PerSecond(archive, nameof(ArchiveBenchmarks.WriteZstd), "archive.events_per_s").ComparedWith(snappy));
    figures.Add(new BenchFigure("archive.bytes_per_event", await ArchiveBenchmarks.MeasureBytesPerEventAsync(LambdaPlatform.Batch.Master.MasterCompression.Zstd), "bytes"));
}

// End to end (several threads each): run on every core, then pin again.
using (Harness.AllCores())
{
    // The platform host opens its own chDB: a child process, so this one keeps a single chDB data path.
    figures.AddRange(await ApiEndToEnd.RunInChildAsync());

    var chdbPath = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-chdb-" + Guid.NewGuid().ToString("N"));
    var schemas = LambdaPlatform.Schemas.Events.EventSchemaRegistry.LoadDefault();
    await using (var chdb = await LambdaPlatform.ClickHouse.ChDbClickHouse.CreateAsync(new LambdaPlatform.ClickHouse.ChDbOptions { DataPath = chdbPath }))
    {
        figures.AddRange(await new SpeedEndToEnd(chdb, schemas).RunAsync());
        figures.AddRange(await new BatchEndToEnd(chdb, schemas).RunAsync());
    }

    try
    {
        Directory.Delete(chdbPath, recursive: true);
    }
    catch (IOException)
    {
    }
}

Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
await File.WriteAllTextAsync(output, JsonSerializer.Serialize(figures, new JsonSerializerOptions { WriteIndented = true }));

Console.WriteLine();
Console.WriteLine($"{"figure",-32} {"value",16} {"unit",-10} {"baseline",-28} {"ratio",8}");
foreach (var f in figures)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{f.Name,-32} {f.Value,16:N2} {f.Unit,-10} {f.Baseline ?? "-",-28} {(f.Ratio is { } r ? r.ToString("0.000", CultureInfo.InvariantCulture) : "-"),8}"));
}

Console.WriteLine($"wrote {Path.GetFullPath(output)}");
return 0;

static BenchFigure PerSecond(Summary summary, string method, string name)
{
    var report = summary.Reports.Single(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method);
    var medianNs = report.ResultStatistics?.Median ?? throw new InvalidOperationException($"benchmark {method} produced no result");
    return new BenchFigure(name, 1e9 / medianNs, "events/s");
}
