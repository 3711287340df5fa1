using System.Globalization;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// The same batch job as <see cref="ViewSql.BatchSelect"/>, emitted as Spark SQL so a Spark cluster can
/// run it over the Parquet master dataset: duplicates removed by eventId (first by Kafka partition and
/// offset), the view's types and filters, and every measure exact with the same definitions
/// (<see cref="Measure.SparkSql"/>) and the same missing-value rule (<see cref="FieldSql.Spark"/>). Output columns
/// are the batch table's, in order. No Spark runtime is reachable from the development machines, so
/// this text is checked for form and for column-by-column correspondence with the ClickHouse query,
/// not executed.
/// </summary>
public sealed class SparkSql(ViewDefinition view)
{
    /// <summary>The Spark SQL query for one day's master-dataset files at <paramref name="parquetPath"/> (a path or glob Spark accepts).</summary>
    public string BatchSelect(string parquetPath)
    {
        ArgumentNullException.ThrowIfNull(parquetPath);
        var bucketSeconds = view.Bucket.Seconds.ToString(CultureInfo.InvariantCulture);
        var select = new List<string> { $"timestamp_seconds(floor(unix_seconds(timestamp) / {bucketSeconds}) * {bucketSeconds}) AS `bucket`" };
        select.AddRange(view.Dimensions.Select(d => $"{FieldSql.SparkDimension(d.Path)} AS {Quote(d.Name)}"));
        select.AddRange(view.Measures.SelectMany(m => m.SparkSql(m.Path is null ? string.Empty : FieldSql.Spark(m.Path, m.Input))));

        var where = new List<string>();
        if (view.EventTypes is { } types)
        {
            where.Add($"eventType IN ({string.Join(", ", types.Select(FieldSql.SparkLiteral))})");
        }

        foreach (var f in view.Filters)
        {
            where.Add($"{FieldSql.Spark(f.Path, MeasureInput.Text)} IN ({string.Join(", ", f.Values.Select(FieldSql.SparkLiteral))})");
        }

        var groupBy = string.Join(", ", Enumerable.Range(1, 1 + view.Dimensions.Count).Select(i => i.ToString(CultureInfo.InvariantCulture)));
        var source = $"(SELECT *, row_number() OVER (PARTITION BY eventId ORDER BY kafkaPartition, kafkaOffset) AS lambda_rn FROM parquet.`{parquetPath.Replace("`", "``", StringComparison.Ordinal)}`{(where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty)}) AS events";
        return $"SELECT {string.Join(", ", select)} FROM {source} WHERE lambda_rn = 1 GROUP BY {groupBy} ORDER BY {groupBy}";
    }

    private static string Quote(string name) => "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";
}
