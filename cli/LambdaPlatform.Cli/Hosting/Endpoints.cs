using System.Text.Json;
using System.Text.Json.Serialization;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>
/// <c>DIR/endpoints.json</c>, written by <c>lambda up</c> so that other processes and tools find the
/// running platform: the Kafka bootstrap servers and the HTTP address.
/// </summary>
/// <param name="Kafka">Kafka bootstrap servers.</param>
/// <param name="Http">Base address of the HTTP API, e.g. <c>http://127.0.0.1:5080</c>.</param>
/// <param name="ClickHouse">Which ClickHouse serves the views (e.g. <c>chdb:/path</c>).</param>
public sealed record Endpoints(
    [property: JsonPropertyName("kafka")] string Kafka,
    [property: JsonPropertyName("http")] string Http,
    [property: JsonPropertyName("clickhouse")] string ClickHouse)
{
    /// <summary>The file name inside the data folder.</summary>
    public const string FileName = "endpoints.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Writes the file atomically (write then rename).</summary>
    public async Task WriteAsync(string dataDirectory, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, JsonSerializer.Serialize(this, Json), cancellationToken);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Reads the file of a running <c>lambda up</c>.</summary>
    /// <exception cref="CliException">No file: nothing is running with that data folder.</exception>
    public static async Task<Endpoints> ReadAsync(string dataDirectory, CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(dataDirectory, FileName);
        if (!File.Exists(path))
        {
            throw new CliException($"no running platform found: {path} does not exist (start one with `lambda up`, or pass the address)");
        }

        try
        {
            var endpoints = JsonSerializer.Deserialize<Endpoints>(await File.ReadAllTextAsync(path, cancellationToken))
                ?? throw new CliException($"{path} is empty");
            var missing = new[] { ("kafka", endpoints.Kafka), ("http", endpoints.Http) }.Where(f => string.IsNullOrWhiteSpace(f.Item2)).Select(f => $"\"{f.Item1}\"").ToList();
            if (missing.Count > 0)
            {
                throw new CliException($"{path}: {string.Join(" and ", missing)} {(missing.Count == 1 ? "is" : "are")} missing (the file is written by `lambda up`; start it again)");
            }

            return endpoints;
        }
        catch (JsonException e)
        {
            throw new CliException($"{path} is not valid: {e.Message}");
        }
    }

    /// <summary>Removes the file (on shutdown).</summary>
    public static void Delete(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, FileName);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
