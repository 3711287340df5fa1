using System.Diagnostics;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// The batch recompute of <c>checkout_revenue</c> over 10M archived events in chDB (<c>batch.events_per_s</c>)
/// against a scan of the same columns of the same files (<c>batch.scan.events_per_s</c>).
/// </summary>
internal sealed class BatchEndToEnd(IClickHouse clickHouse, EventSchemaRegistry schemas)
{
    // The cached dataset's shape: bump it when the generator's events change (v2: canonical checkouts with line items).
    private const string Version = "v2";
    private const int Files = 10;
    private const int RowsPerFile = 1_000_000;
    private const long Rows = (long)Files * RowsPerFile;
    private const int Repeats = 3;
    private static readonly DateTime Day = new(2026, 10, 1, 0, 0, 0, DateTimeKind.Utc);

    public async Task<List<BenchFigure>> RunAsync()
    {
        var folder = await EnsureDatasetAsync();
        var glob = Path.Combine(folder, "*.parquet");
        var view = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), schemas).Single(v => v.Name == "checkout_revenue");
        var scanSql = $"SELECT count(), sum(length(eventType)), sum(length(userId)), sum(length(payload)), max(timestamp), uniqCombined(eventId) FROM file({ViewSql.Literal(glob)}, Parquet)";
        var batchSql = $"SELECT count() FROM ({new ViewSql(view).BatchSelect(glob)})";

        var scan = new List<double>();
        var batch = new List<double>();
        for (var r = 0; r < Repeats; r++)
        {
            scan.Add(Rows / await TimeAsync(scanSql));
            batch.Add(Rows / await TimeAsync(batchSql));
            Harness.Log($"run {r + 1}: scan {scan[^1]:N0}/s, checkout_revenue {batch[^1]:N0}/s");
        }

        var scanFigure = new BenchFigure("batch.scan.events_per_s", Harness.Median(scan), "events/s");
        return [scanFigure, new BenchFigure("batch.events_per_s", Harness.Median(batch), "events/s").ComparedWith(scanFigure)];
    }

    private async Task<double> TimeAsync(string sql)
    {
        var stopwatch = Stopwatch.StartNew();
        await using (var stream = await clickHouse.QueryAsync(sql, "TabSeparated"))
        {
            await stream.CopyToAsync(Stream.Null);
        }

        return stopwatch.Elapsed.TotalSeconds;
    }

    /// <summary>The 10M-event day as master-dataset files, generated once and cached under ~/.cache.</summary>
    private async Task<string> EnsureDatasetAsync()
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "lambdaplatform", "bench", $"master-{Version}-{Files}x{RowsPerFile}");
        var folder = Path.Combine(root, $"date={Day:yyyy-MM-dd}");
        var done = Path.Combine(root, "complete");
        if (File.Exists(done))
        {
            return folder;
        }

        Harness.Log($"generating {Rows:N0} master-dataset events into {folder} (once)");
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        Directory.CreateDirectory(folder);
        var decoder = new EventDecoder(schemas, new EventDecoderOptions { Clock = new FixedClock(Day.AddDays(5)) });
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 2026 });
        var buffer = new MasterEventBuffer(RowsPerFile);
        var step = 86_000.0 / Rows;
        long offset = 0;
        for (var f = 0; f < Files; f++)
        {
            buffer.Clear();
            var first = offset;
            for (var i = 0; i < RowsPerFile; i++)
            {
                var e = generator.Next(Day.AddSeconds(offset * step));
                if (!decoder.TryDecode(e.Json, out var decoded, out var violation))
                {
                    throw new InvalidOperationException($"generated event is invalid: {violation}");
                }

                buffer.Add(decoded!, f, offset++);
            }

            await MasterParquet.WriteFileAsync(buffer, Path.Combine(folder, $"{f}-{first}-{offset - 1}.parquet"));
            Harness.Log($"wrote file {f + 1}/{Files}");
        }

        await File.WriteAllTextAsync(done, Version);
        return folder;
    }

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
