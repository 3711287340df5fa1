using System.CommandLine;
using System.Globalization;
using LambdaPlatform.Chaos;

var shortRun = new Option<bool>("--short") { Description = "The shorter suite CI runs (fewer events)" };
var seedOption = new Option<int?>("--seed") { Description = "Seed of every random choice (default: random, printed)" };
var only = new Option<string[]>("--only") { Description = "Run only faults whose name contains this text (repeatable)" };
var output = new Argument<string>("report") { Description = "Where to write the JSON report", DefaultValueFactory = _ => "artifacts/chaos.json" };
var root = new RootCommand("LambdaPlatform chaos suite: injects faults into real components and checks nothing is lost or double counted") { shortRun, seedOption, only, output };
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
