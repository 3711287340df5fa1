using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LambdaPlatform.Chaos;

/// <summary>The chaos report: a table for people and <c>artifacts/chaos.json</c> for machines.</summary>
public static class ChaosReport
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes the table of <paramref name="results"/>.</summary>
    public static void WriteTable(IReadOnlyList<FaultResult> results, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(output);
        var width = Math.Max(5, results.Count == 0 ? 0 : results.Max(r => r.Fault.Length));
        output.WriteLine($"{"fault".PadRight(width)}  {"injected",8}  {"events in",12}  {"in merged view",14}  {"lost",8}  {"duplicated",10}  {"cells",9}  {"wrong",6}");
        output.WriteLine(new string('-', width + 83));
        foreach (var r in results)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Fault.PadRight(width)}  {r.Injected,8:N0}  {r.EventsIn,12:N0}  {r.EventsInMergedView,14:N0}  {r.Lost,8:N0}  {r.Duplicated,10:N0}  {Optional(r.CellsCompared),9}  {Optional(r.CellsWrong),6}{(r.Clean ? string.Empty : "  <-- FAILED")}"));
        }
    }

    private static string Optional(long? value) => value?.ToString("N0", CultureInfo.InvariantCulture) ?? "-";

    /// <summary>Writes <c>{"faults": [...]}</c> to <paramref name="path"/>.</summary>
    public static async Task WriteJsonAsync(IReadOnlyList<FaultResult> results, string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(results);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        var document = new Report([.. results.Select(r => new Row(r.Fault, r.Injected, r.EventsIn, r.EventsInMergedView, r.Lost, r.Duplicated, r.CellsCompared, r.CellsWrong, r.KillsOnWorkInFlight, r.DeadLettered,
            r.Error, r.Notes.Count == 0 ? null : r.Notes)
        {
            Figures = r.Figures.Count == 0 ? null : r.Figures.ToDictionary(f => f.Key, f => (object)f.Value, StringComparer.Ordinal),
        })]);
        await using var stream = File.Create(path);
        await JsonSerializer.SerializeAsync(stream, document, Json, cancellationToken);
    }

    private sealed record Report([property: JsonPropertyName("faults")] IReadOnlyList<Row> Faults);

    private sealed record Row(string Fault, int Injected, long EventsIn, long EventsInMergedView, long Lost, long Duplicated,
        long? CellsCompared, long? CellsWrong, int? KillsOnWorkInFlight, long? DeadLettered, string? Error, IReadOnlyList<string>? Notes)
    {
        /// <summary>The fault's own figures, as extra fields of the row.</summary>
        [JsonExtensionData]
        public Dictionary<string, object>? Figures { get; init; }
    }
}
