using System.CommandLine;
using System.Globalization;
using LambdaPlatform.Chaos;

var shortRun = new Option<bool>("--short") { Description = "The shorter suite CI runs (fewer events)" };
var seedOption = new Option<int?>("--seed") { Description = "Seed of every random choice (default: random, printed)" };
var only = new Option<string[]>("--only") { Description = "Run only faults whose name contains this text (repeatable)" };
var output = new Argument<string>("report") { Description = "Where to write the JSON report", DefaultValueFactory = _ => "artifacts/chaos.json" };
var minutes = new Option<double>("--minutes") { Description = "How long events flow (default 30)", DefaultValueFactory = _ => 30 };
var rate = new Option<int>("--rate") { Description = "Events per second (default 20,000)", DefaultValueFactory = _ => 20_000 };
var freshness = new Option<double>("--freshness-p99") { Description = "Bound on the speed layer's freshness p99 in every minute, in seconds (default 5)", DefaultValueFactory = _ => 5 };
var soakSeed = new Option<int?>("--seed") { Description = "Seed of every random choice (default: random, printed)" };
var soakReport = new Argument<string>("report") { Description = "Where to write the JSON report", DefaultValueFactory = _ => "artifacts/soak.json" };
var soak = new Command("soak", "The soak: events through the whole platform for a long time; memory flat, freshness p99 held, end state exact") { minutes, rate, freshness, soakSeed, soakReport };
soak.SetAction(async (result, cancellationToken) =>
{
    var settings = new LambdaPlatform.Chaos.Soak.SoakSettings
    {
        Duration = TimeSpan.FromMinutes(result.GetValue(minutes)),
        Rate = result.GetValue(rate),
        FreshnessP99Bound = TimeSpan.FromSeconds(result.GetValue(freshness)),
    };
    if (result.GetValue(soakSeed) is { } s)
    {
        settings = settings with { Seed = s };
    }

    if (settings.Duration <= TimeSpan.Zero || settings.Rate <= 0)
    {
        Console.Error.WriteLine("soak: --minutes and --rate must be positive");
        return 2;
    }

    settings = settings with { BatchEvery = TimeSpan.FromSeconds(Math.Min(300, Math.Max(30, settings.Duration.TotalSeconds / 6))) };
    return await LambdaPlatform.Chaos.Soak.SoakRun.RunAsync(settings, result.GetValue(soakReport)!, Console.Out, cancellationToken) ? 0 : 1;
});
var root = new RootCommand("LambdaPlatform chaos suite: injects faults into real components and checks nothing is lost or double counted") { shortRun, seedOption, only, output, soak };
root.SetAction(async (result, cancellationToken) =>
{
    var seed = result.GetValue(seedOption);
    var settings = result.GetValue(shortRun) ? ChaosSettings.Ci(seed) : ChaosSettings.Full(seed);
    var filters = result.GetValue(only) ?? [];
    var scenarios = ChaosSuite.All.Where(s => filters.Length == 0 || filters.Any(f => s.Fault.Contains(f, StringComparison.OrdinalIgnoreCase))).ToList();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"chaos: seed {settings.Seed}, {scenarios.Count} faults, work folder {settings.WorkDirectory}"));
    var results = new List<FaultResult>();
    var failed = false;
    foreach (var scenario in scenarios)
    {
        Console.WriteLine($"== {scenario.Fault}");
        try
        {
            var r = await scenario.RunAsync(settings, Console.Out, cancellationToken);
            foreach (var note in r.Notes)
            {
                Console.WriteLine("   " + note);
            }

            results.Add(r);
            failed |= !r.Clean;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Console.WriteLine($"   FAILED: {e}");
            results.Add(new FaultResult(scenario.Fault, 0, 0, 0, 0, 0) { Error = e.Message });
            failed = true;
        }
    }

    Console.WriteLine();
    ChaosReport.WriteTable(results, Console.Out);
    var path = result.GetValue(output)!;
    await ChaosReport.WriteJsonAsync(results, path, cancellationToken);
    Console.WriteLine($"wrote {path} (seed {settings.Seed})");
    if (!failed)
    {
        try
        {
            Directory.Delete(settings.WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the scratch folder is under the temp folder.
        }
    }

    return failed ? 1 : 0;
});
return await root.Parse(args).InvokeAsync();
