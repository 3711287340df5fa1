using System.Globalization;
using System.Text;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// The SQL a view compiles to. Serving DDL (<c>&lt;view&gt;_rt</c>, <c>&lt;view&gt;_batch</c>, the merged
/// <c>&lt;view&gt;</c> and the watermark table) is accepted by ClickHouse 18.16 and 26.5; the batch query is
/// ClickHouse SQL over the Parquet master dataset (run by chDB or a ClickHouse cluster).
/// </summary>
/// <remarks>
/// Real-time rows are deltas: one row per (bucket, dimensions, Kafka partition, first offset of the flush),
/// holding each measure's mergeable state (see <see cref="Measure"/>). The table is a ReplacingMergeTree on that
/// key, so a flush written twice collapses to one row (read with FINAL), and rows from any number of speed-layer
/// instances merge in SQL. Nothing here knows a measure kind: each <see cref="Measure"/> brings its own columns and SQL.
/// </remarks>
/// <param name="view">The view.</param>
/// <param name="database">
/// Database that every table and view name emitted here is qualified with (e.g. <c>analytics</c> gives
/// <c>analytics.checkout_revenue_rt</c>); null (default) leaves names unqualified, i.e. in the session's current database.
/// </param>
public sealed class ViewSql(ViewDefinition view, string? database = null)
{
    /// <summary>Table holding each view's batch watermark W (buckets below W are answered by batch); unqualified.</summary>
    public const string WatermarkTable = "lambda_watermarks";

    private readonly string? _database = ValidateDatabase(database);

    /// <summary>The view.</summary>
    public ViewDefinition View => view;

    /// <summary>The database names are qualified with, or null.</summary>
    public string? Database => _database;

    /// <summary>Name of the watermark table, qualified with <see cref="Database"/> when set.</summary>
    public string WatermarkTableName => Qualify(_database, WatermarkTable);

    /// <summary>Name of the real-time table (qualified with <see cref="Database"/> when set).</summary>
    public string RealtimeTable => Qualify(_database, view.Name + "_rt");

    /// <summary>Name of the batch table (qualified with <see cref="Database"/> when set).</summary>
    public string BatchTable => Qualify(_database, view.Name + "_batch");

    /// <summary>Name of the merged view analysts query (qualified with <see cref="Database"/> when set).</summary>
    public string MergedView => Qualify(_database, view.Name);

    /// <summary>DDL of the watermark table (shared by all views), unqualified.</summary>
    public static string CreateWatermarkTable => CreateWatermarkTableIn(null);

    /// <summary>DDL of the watermark table (shared by all views) in <paramref name="database"/> (null: unqualified).</summary>
    public static string CreateWatermarkTableIn(string? database) => $"""
        CREATE TABLE IF NOT EXISTS {Qualify(ValidateDatabase(database), WatermarkTable)} (
            view String,
            watermark DateTime('UTC'),
            updatedAt DateTime('UTC')
        ) ENGINE = ReplacingMergeTree(updatedAt)
        ORDER BY view
        """;

    /// <summary>SQL giving the view's watermark W (1970-01-01 when no batch has run yet).</summary>
    public string WatermarkExpression => $"(SELECT max(watermark) FROM {WatermarkTableName} WHERE view = {Literal(view.Name)})";

    /// <summary>The real-time table's columns for inserts, in order: bucket, dimensions, Kafka position, each measure's state columns.</summary>
    public IReadOnlyList<(string Name, string Type)> RealtimeColumns
    {
        get
        {
            var columns = new List<(string, string)> { ("bucket", "DateTime") };
            columns.AddRange(view.Dimensions.Select(d => (d.Name, "String")));
            columns.Add(("kafkaPartition", "UInt16"));
            columns.Add(("firstOffset", "UInt64"));
            columns.Add(("lastOffset", "UInt64"));
            columns.AddRange(view.Measures.SelectMany(m => m.RealtimeColumns).Select(c => (c.Name, c.Type)));
            return columns;
        }
    }

    /// <summary>The batch table's columns (also the merged view's, before <c>side</c>), in order: bucket, dimensions, each measure's served columns.</summary>
    public IReadOnlyList<(string Name, string Type)> BatchColumns
    {
        get
        {
            var columns = new List<(string, string)> { ("bucket", "DateTime") };
            columns.AddRange(view.Dimensions.Select(d => (d.Name, "String")));
            columns.AddRange(view.Measures.SelectMany(m => m.ServedColumns).Select(c => (c.Name, c.Type)));
            return columns;
        }
    }

    /// <summary>DDL of <c>&lt;view&gt;_rt</c>.</summary>
    public string CreateRealtimeTable
    {
        get
        {
            var key = string.Join(", ", view.Dimensions.Select(d => Quote(d.Name)).Prepend("bucket").Append("kafkaPartition").Append("firstOffset"));
            return $"""
                CREATE TABLE IF NOT EXISTS {RealtimeTable} (
                {ColumnList(RealtimeColumns)}
                ) ENGINE = ReplacingMergeTree()
                PARTITION BY toYYYYMMDD(bucket)
                ORDER BY ({key})
                """;
        }
    }

    /// <summary>DDL of <c>&lt;view&gt;_batch</c> (also used for its staging table, with another name).</summary>
    public string CreateBatchTable(string? tableName = null)
    {
        var key = string.Join(", ", view.Dimensions.Select(d => Quote(d.Name)).Prepend("bucket"));
        return $"""
            CREATE TABLE IF NOT EXISTS {tableName ?? BatchTable} (
            {ColumnList(BatchColumns)}
            ) ENGINE = MergeTree()
            PARTITION BY toYYYYMMDD(bucket)
            ORDER BY ({key})
            """;
    }

    /// <summary>
    /// The real-time rows merged per bucket and dimensions, with final measure values (same columns as the batch
    /// table). Two steps: each measure's merge aggregates (<see cref="Measure.RealtimeMergeSql"/>), then its final
    /// values (<see cref="Measure.RealtimeFinalSql"/>), so that no alias reads another in one SELECT (18.16 rejects that).
    /// </summary>
    public string RealtimeMergedSelect(string? where = null)
    {
        var keys = view.Dimensions.Select(d => Quote(d.Name)).Prepend("bucket").ToList();
        var groupBy = string.Join(", ", keys);
        var merge = string.Join(", ", keys.Concat(view.Measures.SelectMany(m => m.RealtimeMergeSql())));
        var aggregate = $"SELECT {merge} FROM {RealtimeTable} FINAL{(where is null ? string.Empty : " WHERE " + where)} GROUP BY {groupBy}";
        var final = string.Join(", ", keys.Concat(view.Measures.SelectMany(m => m.RealtimeFinalSql())));
        return $"SELECT {final} FROM ({aggregate})";
    }

    /// <summary>
    /// DDL of the merged view analysts query: batch rows for buckets below W, real-time rows at or above W,
    /// one row per bucket and dimensions, and a <c>side</c> column saying which side answered (batch or realtime).
    /// </summary>
    public string CreateMergedView
    {
        get
        {
            var columns = string.Join(", ", BatchColumns.Select(c => Quote(c.Name)));
            return $"""
                CREATE VIEW IF NOT EXISTS {MergedView} AS
                SELECT {columns}, 'batch' AS side FROM {BatchTable} WHERE bucket < {WatermarkExpression}
                UNION ALL
                SELECT {columns}, 'realtime' AS side FROM ({RealtimeMergedSelect($"bucket >= {WatermarkExpression}")})
                """;
        }
    }

    /// <summary>Every statement that creates the view's serving objects, in order. Idempotent.</summary>
    public IReadOnlyList<string> CreateServingObjects => [CreateWatermarkTableIn(_database), CreateRealtimeTable, CreateBatchTable(), CreateMergedView];

    /// <summary>
    /// The exact batch computation of one day (ClickHouse SQL over the Parquet master dataset read with
    /// <c>file(<paramref name="parquetGlob"/>, Parquet)</c>): events of the view's types and filters, duplicates
    /// removed by eventId, every measure exact (<see cref="Measure.BatchSql"/>), fields read under the missing-value
    /// rule (<see cref="FieldSql"/>). Produces the batch table's columns in order.
    /// </summary>
    public string BatchSelect(string parquetGlob)
    {
        var select = new List<string> { $"{BucketExpression("timestamp")} AS bucket" };
        select.AddRange(view.Dimensions.Select(d => $"{FieldSql.ClickHouseDimension(d.Path)} AS {Quote(d.Name)}"));
        select.AddRange(view.Measures.SelectMany(m => m.BatchSql(m.Path is null ? string.Empty : FieldSql.ClickHouse(m.Path, m.Input))));

        var where = new List<string>();
        if (view.EventTypes is { } types)
        {
            where.Add($"eventType IN ({string.Join(", ", types.Select(Literal))})");
        }

        foreach (var f in view.Filters)
        {
            where.Add($"{FieldSql.ClickHouse(f.Path, MeasureInput.Text)} IN ({string.Join(", ", f.Values.Select(Literal))})");
        }

        var groupBy = string.Join(", ", view.Dimensions.Select(d => Quote(d.Name)).Prepend("bucket"));
        var source = $"(SELECT * FROM file({Literal(parquetGlob)}, Parquet){(where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty)} LIMIT 1 BY eventId)";
        return $"SELECT {string.Join(", ", select)} FROM {source} GROUP BY {groupBy} ORDER BY {groupBy}";
    }

    /// <summary>ClickHouse expression for the bucket start of a DateTime/DateTime64 column.</summary>
    public string BucketExpression(string column)
    {
        var size = view.Bucket.Size;
        var interval = size.TotalDays >= 1 ? $"INTERVAL {(int)size.TotalDays} DAY"
            : size.TotalHours >= 1 && size.Minutes == 0 ? $"INTERVAL {(int)size.TotalHours} HOUR"
            : $"INTERVAL {(int)size.TotalMinutes} MINUTE";
        return $"toStartOfInterval(toDateTime({column}, 'UTC'), {interval}, 'UTC')";
    }

    /// <summary>A ClickHouse string literal.</summary>
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
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\0' => "\\0",
                _ => c.ToString(),
            });
        }

        return sb.Append('\'').ToString();
    }

    /// <summary>A ClickHouse identifier, back-quoted.</summary>
    public static string Quote(string name) => "`" + name.Replace("`", "\\`", StringComparison.Ordinal) + "`";

    private static string Qualify(string? database, string name) => database is null ? name : database + "." + name;

    private static string? ValidateDatabase(string? database)
    {
        if (database is null)
        {
            return null;
        }

        return database.Length > 0 && database.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(database[0])
            ? database
            : throw new ArgumentException($"'{database}' is not a database name (ASCII letters, digits and underscores, not starting with a digit).", nameof(database));
    }

    private static string ColumnList(IReadOnlyList<(string Name, string Type)> columns) =>
        string.Join(",\n", columns.Select(c => $"    {Quote(c.Name)} {(c.Type == "DateTime" ? "DateTime('UTC')" : c.Type)}"));

}
