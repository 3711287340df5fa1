using System.Diagnostics;
using System.Globalization;
using DuckDB.NET.Data;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// <c>peer.duckdb.batch.events_per_s</c>: DuckDB (DuckDB.NET, in process) computes the exact <c>checkout_revenue</c> view-day
/// from the same master-dataset Parquet files the platform's batch recompute reads, and writes it as Parquet:
/// checkout events, duplicates removed by eventId, grouped by minute and store, with count, sum(cartValue), exact distinct
/// userId and the exact 0.99 quantile of cartValue by the nearest rank (the ⌈q·n⌉-th smallest value; missing values skipped):
/// DuckDB's <c>quantile_disc</c>, which picks that value (the harness checks it against the explicit rank on the same data).
/// </summary>
internal static class DuckDbBatchPeer
{
    /// <summary>Runs the view-day over <paramref name="parquetGlob"/> into <paramref name="output"/>; returns the wall time of the <c>COPY</c>.</summary>
    public static TimeSpan Run(string parquetGlob, string output)
    {
        using var connection = Open();
        var stopwatch = Stopwatch.StartNew();
        Execute(connection, $"COPY ({Select(parquetGlob, "quantile_disc(cart, 0.99)")}) TO {Literal(output)} (FORMAT PARQUET)");
        return stopwatch.Elapsed;
    }

    /// <summary>The rows of a result file written by <see cref="Run"/>, in (bucket, store) order.</summary>
    public static List<ViewDayRow> ReadRows(string parquet)
    {
        using var connection = Open();
        return Read(connection, $"SELECT epoch(bucket)::BIGINT, store, orders::BIGINT, revenue::DOUBLE, buyers::BIGINT, p99_cart::DOUBLE FROM read_parquet({Literal(parquet)}) ORDER BY bucket, store");
    }

    /// <summary>
    /// The same view-day with the quantile taken as the value of an explicit 1-based rank (a DuckDB expression of n, the
    /// count of non-missing values), untimed: to check the peer's rule, and to say which rule the platform follows.
    /// </summary>
    public static List<ViewDayRow> ComputeWithRank(string parquetGlob, string rank)
    {
        using var connection = Open();
        var quantile = $"list_sort(list(cart) FILTER (WHERE cart IS NOT NULL))[{rank}]";
        return Read(connection, $"SELECT epoch(bucket)::BIGINT, store, orders::BIGINT, revenue::DOUBLE, buyers::BIGINT, p99_cart::DOUBLE FROM ({Select(parquetGlob, quantile)}) ORDER BY bucket, store");
    }

    /// <summary>Nearest rank: ⌈q·n⌉ (1-based) over the n non-missing values.</summary>
    public const string NearestRank = "ceil(0.99 * count(cart))::BIGINT";

    /// <summary>The rank ⌊q·(n−1)⌋ + 1 (the 0-based ⌊q·(n−1)⌋-th value), another common rule.</summary>
    public const string FloorRank = "(floor(0.99 * (count(cart) - 1)) + 1)::BIGINT";

    private static string Select(string parquetGlob, string quantile) => $"""
        SELECT date_trunc('minute', ts) AS bucket, store,
               count(*)::UBIGINT AS orders,
               coalesce(sum(cart), 0)::DOUBLE AS revenue,
               count(DISTINCT userId)::UBIGINT AS buyers,
               {quantile} AS p99_cart
        FROM (
            -- One JSON parse per event for both fields (a path list), instead of one per field.
            SELECT ts, userId, coalesce(fields[1], '') AS store, TRY_CAST(fields[2] AS DOUBLE) AS cart
            FROM (
                SELECT CAST(timestamp AS TIMESTAMP) AS ts, userId, json_extract_string(payload, ['$.location', '$.cartValue']) AS fields
                FROM (
                    SELECT DISTINCT ON (eventId) eventId, timestamp, userId, payload
                    FROM read_parquet({Literal(parquetGlob)})
                    WHERE eventType IN ('user.action.checkout')
                )
            )
        )
        GROUP BY ALL
        ORDER BY bucket, store
        """;

    private static DuckDBConnection Open()
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        connection.Open();

        // Parquet timestamps are UTC instants; buckets are UTC minutes.
        Execute(connection, "SET TimeZone = 'UTC'");
        Execute(connection, string.Create(CultureInfo.InvariantCulture, $"SET threads = {Environment.ProcessorCount}"));
        return connection;
    }

    private static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static List<ViewDayRow> Read(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<ViewDayRow>();
        while (reader.Read())
        {
            rows.Add(new ViewDayRow(reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.GetDouble(3), reader.GetInt64(4),
                reader.IsDBNull(5) ? double.NaN : reader.GetDouble(5)));
        }

        return rows;
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
}

/// <summary>One row of the <c>checkout_revenue</c> view-day, as both engines produce it.</summary>
/// <param name="Bucket">Minute start, Unix seconds (UTC).</param>
/// <param name="Store">payload.location.</param>
/// <param name="Orders">count.</param>
/// <param name="Revenue">sum(payload.cartValue).</param>
/// <param name="Buyers">exact distinct userId.</param>
/// <param name="P99Cart">0.99 quantile of payload.cartValue.</param>
internal sealed record ViewDayRow(long Bucket, string Store, long Orders, double Revenue, long Buyers, double P99Cart);
