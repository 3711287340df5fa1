using LambdaPlatform.Batch.Master;
using Parquet;
using Parquet.Schema;

namespace LambdaPlatform.Chaos.Verification;

/// <summary>What the master dataset holds compared with the offsets Kafka acknowledged for valid events.</summary>
/// <param name="Rows">Rows in the published files.</param>
/// <param name="Missing">Acknowledged valid (partition, offset) pairs with no row.</param>
/// <param name="Duplicated">Rows beyond the first for one (partition, offset), plus rows of offsets never acknowledged as valid.</param>
/// <param name="Files">Published files read.</param>
public sealed record MasterComparison(long Rows, long Missing, long Duplicated, int Files);

/// <summary>Reads every published master-dataset file (independently of the batch layer's reader) and checks each valid offset is there exactly once.</summary>
public static class MasterDatasetCheck
{
    /// <summary>Compares the dataset under <paramref name="dataRoot"/> with <paramref name="validOffsets"/>.</summary>
    public static async Task<MasterComparison> CompareAsync(string dataRoot, IReadOnlyCollection<(int Partition, long Offset)> validOffsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(validOffsets);
        var seen = new Dictionary<(int, long), int>(validOffsets.Count);
        var files = new MasterDataset(dataRoot).ListFiles();
        long rows = 0;
        foreach (var file in files)
        {
            await using var reader = await ParquetReader.CreateAsync(file.Path, cancellationToken: cancellationToken);
            var partitionField = reader.Schema.FindDataField("kafkaPartition") ?? throw new InvalidDataException($"{file.Path} has no kafkaPartition column");
            var offsetField = reader.Schema.FindDataField("kafkaOffset") ?? throw new InvalidDataException($"{file.Path} has no kafkaOffset column");
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var n = checked((int)group.RowCount);
                var partitions = new int[n];
                var offsets = new long[n];
                await group.ReadAsync<int>(partitionField, partitions, cancellationToken: cancellationToken);
                await group.ReadAsync<long>(offsetField, offsets, cancellationToken: cancellationToken);
                for (var i = 0; i < n; i++)
                {
                    var key = (partitions[i], offsets[i]);
                    seen[key] = seen.GetValueOrDefault(key) + 1;
                }

                rows += n;
            }
        }

        long missing = 0, duplicated = 0;
        var expected = new HashSet<(int, long)>(validOffsets);
        foreach (var key in expected)
        {
            if (!seen.TryGetValue(key, out var count))
            {
                missing++;
            }
            else
            {
                duplicated += count - 1;
            }
        }

        foreach (var (key, count) in seen)
        {
            if (!expected.Contains(key))
            {
                duplicated += count;
            }
        }

        return new MasterComparison(rows, missing, duplicated, files.Count);
    }
}
