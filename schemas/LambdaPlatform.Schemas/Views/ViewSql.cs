using System.Globalization;
using System.Text;
using LambdaPlatform.Schemas.Sketches;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// The SQL a view compiles to. Serving DDL (<c>&lt;view&gt;_rt</c>, <c>&lt;view&gt;_batch</c>, the merged
/// <c>&lt;view&gt;</c> and the watermark table) is accepted by ClickHouse 18.16 and 26.5; the batch query is
/// ClickHouse SQL over the Parquet master dataset (run by chDB or a ClickHouse cluster).
/// </summary>
/// <remarks>
/// Real-time rows are deltas: one row per (bucket, dimensions, Kafka partition, first offset of the flush),
/// holding mergeable states (counts, sums, min/max, HyperLogLog registers, DDSketch buckets). The table is a
/// ReplacingMergeTree on that key, so a flush written twice collapses to one row (read with FINAL), and rows
/// from any number of speed-layer instances merge with sum / min / max / maxForEach / sumMap.
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

    /// <summary>The real-time table's columns for inserts, in order.</summary>
    public IReadOnlyList<(string Name, string Type)> RealtimeColumns
    {
        get
        {
            var columns = new List<(string, string)> { ("bucket", "DateTime") };
            columns.AddRange(view.Dimensions.Select(d => (d.Name, "String")));
            columns.Add(("kafkaPartition", "UInt16"));
            columns.Add(("firstOffset", "UInt64"));
            columns.Add(("lastOffset", "UInt64"));
            foreach (var m in view.Measures)
            {
                switch (m.Kind)
                {
                    case MeasureKind.Count:
                        columns.Add((m.Name, "UInt64"));
                        break;
                    case MeasureKind.Sum:
                        columns.Add((m.Name, "Float64"));
                        break;
                    case MeasureKind.Min or MeasureKind.Max:
                        columns.Add((m.Name, "Nullable(Float64)"));
                        break;
                    case MeasureKind.Distinct:
                        columns.Add((m.Name + "_hll", "Array(UInt8)"));
                        break;
                    case MeasureKind.Quantile:
                        columns.Add((m.Name + "_keys", "Array(Int32)"));
                        columns.Add((m.Name + "_counts", "Array(UInt64)"));
                        break;
                    case MeasureKind.TopK:
                        columns.Add((m.Name + "_items", "Array(String)"));
                        columns.Add((m.Name + "_counts", "Array(UInt64)"));
                        break;
                }
            }

            return columns;
        }
    }

    /// <summary>The batch table's columns, in order.</summary>
    public IReadOnlyList<(string Name, string Type)> BatchColumns
    {
        get
        {
            var columns = new List<(string, string)> { ("bucket", "DateTime") };
            columns.AddRange(view.Dimensions.Select(d => (d.Name, "String")));
            foreach (var m in view.Measures)
            {
                switch (m.Kind)
                {
                    case MeasureKind.Count or MeasureKind.Distinct:
                        columns.Add((m.Name, "UInt64"));
                        break;
                    case MeasureKind.Sum or MeasureKind.Quantile:
                        columns.Add((m.Name, "Float64"));
                        break;
                    case MeasureKind.Min or MeasureKind.Max:
                        columns.Add((m.Name, "Nullable(Float64)"));
                        break;
                    case MeasureKind.TopK:
                        columns.Add((m.Name + "_items", "Array(String)"));
                        columns.Add((m.Name + "_counts", "Array(UInt64)"));
                        break;
                }
            }

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

    /// <summary>The real-time rows merged per bucket and dimensions, with final measure values (same columns as the batch table).</summary>
    public string RealtimeMergedSelect(string? where = null)
    {
        var dims = view.Dimensions.Select(d => Quote(d.Name)).ToList();
        var select = new List<string> { "bucket" };
        select.AddRange(dims);
        foreach (var m in view.Measures)
        {
            var name = Quote(m.Name);
            switch (m.Kind)
            {
                case MeasureKind.Count:
                    select.Add($"toUInt64(sum({name})) AS {name}");
                    break;
                case MeasureKind.Sum:
                    select.Add($"sum({name}) AS {name}");
                    break;
                case MeasureKind.Min:
                    select.Add($"min({name}) AS {name}");
                    break;
                case MeasureKind.Max:
                    select.Add($"max({name}) AS {name}");
                    break;
                case MeasureKind.Distinct:
                    select.Add($"{HyperLogLog.SqlEstimate($"maxForEach({Quote(m.Name + "_hll")})")} AS {name}");
                    break;
                case MeasureKind.Quantile:
                    select.Add($"{DDSketch.SqlQuantile($"sumMap({Quote(m.Name + "_keys")}, {Quote(m.Name + "_counts")})", m.Quantile)} AS {name}");
                    break;
                case MeasureKind.TopK:
                    // ClickHouse 18.16's sumMap takes numeric keys only: sum the counts per sipHash64 of the item, and
                    // line the distinct items up with those sums by sorting them by the same hash (a 64-bit collision
                    // would make the two arrays differ in length, and the query fail rather than answer wrongly).
                    var items = Quote(m.Name + "_items");
                    var sums = $"(sumMap(arrayMap(x -> sipHash64(x), {items}), {Quote(m.Name + "_counts")})).2";
                    var names = $"arraySort(x -> sipHash64(x), groupUniqArrayArray({items}))";
                    select.Add($"{TopSql($"arrayMap((i, c) -> (i, c), {names}, {sums})", m.K)} AS {name}");
                    break;
            }
        }

        var groupBy = string.Join(", ", dims.Prepend("bucket"));
        var aggregate = $"SELECT {string.Join(", ", select)} FROM {RealtimeTable} FINAL{(where is null ? string.Empty : " WHERE " + where)} GROUP BY {groupBy}";
        if (!view.Measures.Any(m => m.Kind == MeasureKind.TopK))
        {
            return aggregate;
        }

        // A top-k is aggregated as one array of (item, count) tuples named after the measure, and split into its
        // two columns one level up: in the same SELECT, `m_items` and `m_counts` would each be an alias whose
        // expression reads the other's column, which ClickHouse 18.16 rejects as cyclic aliases.
        var outer = new List<string> { "bucket" };
        outer.AddRange(dims);
        foreach (var m in view.Measures)
        {
            var name = Quote(m.Name);
            if (m.Kind == MeasureKind.TopK)
            {
                outer.Add($"arrayMap(x -> x.1, {name}) AS {Quote(m.Name + "_items")}");
                outer.Add($"arrayMap(x -> x.2, {name}) AS {Quote(m.Name + "_counts")}");
            }
            else
            {
                outer.Add(name);
            }
        }

        return $"SELECT {string.Join(", ", outer)} FROM ({aggregate})";
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
    /// removed by eventId, every measure exact (distinct = uniqExact; quantile = value of rank ⌊q·(n−1)⌋).
    /// Produces the batch table's columns in order.
    /// </summary>
    public string BatchSelect(string parquetGlob)
    {
        var select = new List<string> { $"{BucketExpression("timestamp")} AS bucket" };
        select.AddRange(view.Dimensions.Select(d => $"{FieldSql(d.Path, asText: true)} AS {Quote(d.Name)}"));
        foreach (var m in view.Measures)
        {
            var name = Quote(m.Name);
            var value = m.Path is null ? string.Empty : FieldSql(m.Path, asText: m.Kind == MeasureKind.TopK || m.Path.Type != FieldType.Number);
            switch (m.Kind)
            {
                case MeasureKind.Count:
                    select.Add($"toUInt64(count()) AS {name}");
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
                    select.Add($"toUInt64(uniqExact({value})) AS {name}");
                    break;
                case MeasureKind.Quantile:
                    select.Add($"arrayElement(arraySort(groupArray({value})), toUInt64(floor({Num(m.Quantile)} * (count() - 1))) + 1) AS {name}");
                    break;
                case MeasureKind.TopK:
                    var counted = $"sumMap([{value}], [toUInt64(1)])";
                    var top = TopSql($"arrayMap((i, c) -> (i, c), ({counted}).1, ({counted}).2)", m.K);
                    select.Add($"arrayMap(x -> x.1, {top}) AS {Quote(m.Name + "_items")}");
                    select.Add($"arrayMap(x -> x.2, {top}) AS {Quote(m.Name + "_counts")}");
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
            where.Add($"{FieldSql(f.Path, asText: true)} IN ({string.Join(", ", f.Values.Select(Literal))})");
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

    /// <summary>ClickHouse SQL reading a field from a master-dataset row (payload fields with JSONExtract).</summary>
    public static string FieldSql(FieldPath path, bool asText)
    {
        ArgumentNullException.ThrowIfNull(path);
        return path.Root switch
        {
            FieldRoot.EventId => "toString(eventId)",
            FieldRoot.EventType => "eventType",
            FieldRoot.Timestamp => "toString(timestamp)",
            FieldRoot.UserId => "userId",
            FieldRoot.Source => "source",
            FieldRoot.Version => "version",
            _ => PayloadSql(path, asText),
        };
    }

    private static string PayloadSql(FieldPath path, bool asText)
    {
        var keys = string.Join(", ", path.PayloadPath.Select(Literal));
        return (path.Type, asText) switch
        {
            (FieldType.Text, _) => $"JSONExtractString(payload, {keys})",
            (FieldType.Number, false) => $"JSONExtractFloat(payload, {keys})",
            (FieldType.Number, true) => $"toString(JSONExtractFloat(payload, {keys}))",
            (FieldType.Boolean, _) => $"if(JSONExtractBool(payload, {keys}), 'true', 'false')",
            _ => throw new InvalidOperationException("unreachable"),
        };
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

    /// <summary>The k (item, count) pairs with the largest counts, ties by item: the order of <see cref="SpaceSaving.Top"/>.</summary>
    private static string TopSql(string pairs, int k) =>
        $"arraySlice(arraySort(x -> (-toInt64(x.2), x.1), {pairs}), 1, {k.ToString(CultureInfo.InvariantCulture)})";

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

    private static string Num(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
