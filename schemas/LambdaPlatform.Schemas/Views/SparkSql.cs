using System.Globalization;
using System.Text;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// The same batch job as <see cref="ViewSql.BatchSelect"/>, emitted as Spark SQL so a Spark cluster can
/// run it over the Parquet master dataset: duplicates removed by eventId (first by Kafka partition and
/// offset), the view's types and filters, and every measure exact with the same definitions (distinct =
/// <c>count(DISTINCT …)</c>; quantile = value of rank ⌊q·(n−1)⌋ of the sorted values). Output columns
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
        select.AddRange(view.Dimensions.Select(d => $"{Field(d.Path, asText: true)} AS {Quote(d.Name)}"));
        foreach (var m in view.Measures)
        {
            var name = Quote(m.Name);
            var value = m.Path is null ? string.Empty : Field(m.Path, asText: m.Path.Type != FieldType.Number);
            switch (m.Kind)
            {
                case MeasureKind.Count:
                    select.Add($"CAST(count(*) AS BIGINT) AS {name}");
                    break;
                case MeasureKind.Sum:
                    select.Add($"sum({value}) AS {name}");
                    break;
                case MeasureKind.Min:
                    select.Add($"min({value}) AS {name}");
                    break;
                case MeasureKind.Max:
                    select.Add($"max({value}) AS {name}");
                    break;
                case MeasureKind.Distinct:
                    select.Add($"CAST(count(DISTINCT {value}) AS BIGINT) AS {name}");
                    break;
                case MeasureKind.Quantile:
                    select.Add($"element_at(array_sort(collect_list({value})), CAST(floor({m.Quantile.ToString("R", CultureInfo.InvariantCulture)} * (count({value}) - 1)) AS INT) + 1) AS {name}");
                    break;
                case MeasureKind.TopK:
                    var counted = $"slice(array_sort(transform(map_entries(aggregate(collect_list({value}), map(), (acc, v) -> map_concat(map_filter(acc, (k, c) -> k != v), map(v, coalesce(acc[v], 0) + 1)))), e -> named_struct('c', -e.value, 'v', e.key))), 1, {m.K})";
                    select.Add($"transform({counted}, e -> e.v) AS {Quote(m.Name + "_items")}");
                    select.Add($"transform({counted}, e -> CAST(-e.c AS BIGINT)) AS {Quote(m.Name + "_counts")}");
                    break;
            }
        }

        var where = new List<string>();
        if (view.EventTypes is { } types)
        {
            where.Add($"eventType IN ({string.Join(", ", types.Select(Literal))})");
        }

        foreach (var f in view.Filters)
        {
            where.Add($"{Field(f.Path, asText: true)} IN ({string.Join(", ", f.Values.Select(Literal))})");
        }

        var groupBy = string.Join(", ", Enumerable.Range(1, 1 + view.Dimensions.Count).Select(i => i.ToString(CultureInfo.InvariantCulture)));
        var source = $"(SELECT *, row_number() OVER (PARTITION BY eventId ORDER BY kafkaPartition, kafkaOffset) AS lambda_rn FROM parquet.`{parquetPath.Replace("`", "``", StringComparison.Ordinal)}`{(where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty)}) AS events";
        return $"SELECT {string.Join(", ", select)} FROM {source} WHERE lambda_rn = 1 GROUP BY {groupBy} ORDER BY {groupBy}";
    }

    /// <summary>Spark SQL reading a field of a master-dataset row (payload fields with get_json_object).</summary>
    public static string Field(FieldPath path, bool asText)
    {
        ArgumentNullException.ThrowIfNull(path);
        return path.Root switch
        {
            FieldRoot.EventId => "CAST(eventId AS STRING)",
            FieldRoot.EventType => "eventType",
            FieldRoot.Timestamp => "CAST(timestamp AS STRING)",
            FieldRoot.UserId => "userId",
            FieldRoot.Source => "source",
            FieldRoot.Version => "version",
            _ => Payload(path, asText),
        };
    }

    private static string Payload(FieldPath path, bool asText)
    {
        var json = Literal("$." + string.Join('.', path.PayloadPath));
        var raw = $"get_json_object(payload, {json})";
        return (path.Type, asText) switch
        {
            (FieldType.Number, false) => $"CAST({raw} AS DOUBLE)",
            (FieldType.Number, true) => $"CAST(CAST({raw} AS DOUBLE) AS STRING)",
            _ => raw,
        };
    }

    /// <summary>A Spark SQL string literal.</summary>
    public static string Literal(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var sb = new StringBuilder(value.Length + 2).Append('\'');
        foreach (var c in value)
        {
            sb.Append(c switch
            {
                '\'' => "\\'",
                '\\' => "\\\\",
                _ => c.ToString(),
            });
        }

        return sb.Append('\'').ToString();
    }

    private static string Quote(string name) => "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";
}
