using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace LambdaPlatform.Batch.Tests;

/// <summary>One row as read back by the independent reader, with the file it came from.</summary>
public sealed record Row(Guid EventId, string EventType, DateTime Timestamp, string UserId, string Source, string Version, string Payload,
    int Partition, long Offset, string File);

/// <summary>
/// An independent reader of the master dataset: globs <c>*.parquet</c> like the batch layer does and reads each file
/// with Parquet.Net's string API by column name (not the archiver's own reader).
/// </summary>
public static class TestFiles
{
    public static List<string> Glob(string root) =>
        Directory.Exists(root) ? [.. Directory.EnumerateFiles(root, "*.parquet", SearchOption.AllDirectories).Order()] : [];

    public static async Task<List<Row>> ReadAllAsync(string root) => await ReadAsync(Glob(root));

    public static async Task<List<Row>> ReadAsync(IEnumerable<string> files)
    {
        var rows = new List<Row>();
        foreach (var file in files)
        {
            await using var reader = await ParquetReader.CreateAsync(file);
            DataField F(string name) => reader.Schema.FindDataField(name) ?? throw new InvalidOperationException($"{file}: no column {name}");
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var n = (int)group.RowCount;
                var ids = new Guid[n];
                var types = new string?[n];
                var ts = new DateTime[n];
                var users = new string?[n];
                var sources = new string?[n];
                var versions = new string?[n];
                var payloads = new string?[n];
                var partitions = new int[n];
                var offsets = new long[n];
                await group.ReadAsync<Guid>(F("eventId"), ids);
                await group.ReadAsync(F("eventType"), types.AsMemory());
                await group.ReadAsync<DateTime>(F("timestamp"), ts);
                await group.ReadAsync(F("userId"), users.AsMemory());
                await group.ReadAsync(F("source"), sources.AsMemory());
                await group.ReadAsync(F("version"), versions.AsMemory());
                await group.ReadAsync(F("payload"), payloads.AsMemory());
                await group.ReadAsync<int>(F("kafkaPartition"), partitions);
                await group.ReadAsync<long>(F("kafkaOffset"), offsets);
                for (var i = 0; i < n; i++)
                {
                    rows.Add(new Row(ids[i], types[i]!, ts[i], users[i]!, sources[i]!, versions[i]!, payloads[i]!, partitions[i], offsets[i], file));
                }
            }
        }

        return rows;
    }

    /// <summary>The fields of an event's JSON the archiver must keep, payload as its exact raw text.</summary>
    public static (Guid EventId, string EventType, DateTime Timestamp, string UserId, string Source, string Version, string Payload) Expected(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        return (root.GetProperty("eventId").GetGuid(), root.GetProperty("eventType").GetString()!,
            root.GetProperty("timestamp").GetDateTime().ToUniversalTime(), root.GetProperty("userId").GetString()!,
            root.GetProperty("metadata").GetProperty("source").GetString()!, root.GetProperty("metadata").GetProperty("version").GetString()!,
            root.GetProperty("payload").GetRawText());
    }

    /// <summary>Asserts every (partition, offset) appears at most once across the files.</summary>
    public static void AssertNoOffsetTwice(IEnumerable<Row> rows)
    {
        var twice = rows.GroupBy(r => (r.Partition, r.Offset)).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"{twice.Count} offsets appear more than once, e.g. {string.Join(", ", twice.Take(5))}");
    }
}
