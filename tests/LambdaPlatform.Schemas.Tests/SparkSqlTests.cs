using System.Text.RegularExpressions;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// The Spark SQL a view compiles to. No Spark runtime is reachable here, so it is checked for form
/// (balanced brackets and quotes, a single statement) and for correspondence with the ClickHouse batch
/// query (same output columns in the same order, same dedupe, same filters and measure definitions).
/// </summary>
public sealed partial class SparkSqlTests
{
    private static readonly IReadOnlyList<ViewDefinition> Views = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), EventSchemaRegistry.LoadDefault());

    public static IEnumerable<object[]> ViewNames() => Views.Select(v => new object[] { v.Name });

    [Theory]
    [MemberData(nameof(ViewNames))]
    public void BatchSelect_IsWellFormed_AndHasTheBatchTableColumnsInOrder(string name)
    {
        var view = Views.Single(v => v.Name == name);
        var spark = new SparkSql(view).BatchSelect("/data/master/events/date=2026-11-28/*/*.parquet");
        AssertBalanced(spark);
        Assert.DoesNotContain(";", spark, StringComparison.Ordinal);
        Assert.StartsWith("SELECT ", spark, StringComparison.Ordinal);

        // Output aliases of the outer SELECT, in order, equal the batch table's columns.
        var outer = spark[..spark.IndexOf(" FROM (SELECT *, row_number()", StringComparison.Ordinal)];
        var aliases = AliasRegex().Matches(outer).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(new ViewSql(view).BatchColumns.Select(c => c.Name), aliases);

        // Same dedupe as the ClickHouse query (one row per eventId) and same bucket size.
        Assert.Contains("row_number() OVER (PARTITION BY eventId", spark, StringComparison.Ordinal);
        Assert.Contains("WHERE lambda_rn = 1", spark, StringComparison.Ordinal);
        Assert.Contains($"/ {view.Bucket.Seconds}) * {view.Bucket.Seconds}", spark, StringComparison.Ordinal);
    }

    [Fact]
    public void BatchSelect_OfCheckoutRevenue_MatchesTheClickHouseDefinitions()
    {
        var view = Views.Single(v => v.Name == "checkout_revenue");
        var spark = new SparkSql(view).BatchSelect("/m/*.parquet");
        var clickHouse = new ViewSql(view).BatchSelect("/m/*.parquet");
        Assert.Contains("eventType IN ('user.action.checkout')", spark, StringComparison.Ordinal);
        Assert.Contains("eventType IN ('user.action.checkout')", clickHouse, StringComparison.Ordinal);
        Assert.Contains("coalesce(CASE WHEN from_json(payload, 'struct<`location`:DOUBLE>').`location` IS NOT NULL", spark, StringComparison.Ordinal);
        Assert.Contains("ELSE from_json(payload, 'struct<`location`:STRING>').`location` END, '') AS `store`", spark, StringComparison.Ordinal);
        Assert.Contains("ifNull(multiIf(JSONType(payload, 'location') = 'String', JSONExtractString(payload, 'location')", clickHouse, StringComparison.Ordinal);
        Assert.Contains("CAST(count(*) AS BIGINT) AS `orders`", spark, StringComparison.Ordinal);
        Assert.Contains("sum(from_json(payload, 'struct<`cartValue`:DOUBLE>').`cartValue`) AS `revenue`", spark, StringComparison.Ordinal);
        Assert.Contains("sum(if(JSONType(payload, 'cartValue') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'cartValue'), NULL)) AS `revenue`", clickHouse, StringComparison.Ordinal);
        Assert.Contains("CAST(count(DISTINCT userId) AS BIGINT) AS `buyers`", spark, StringComparison.Ordinal);
        Assert.Contains("uniqExact(userId)", clickHouse, StringComparison.Ordinal);

        // The quantile: the nearest rank ceil(q n) of the sorted non-missing values, 1-based in both dialects, NULL when none.
        Assert.Contains("CASE WHEN count(from_json(payload, 'struct<`cartValue`:DOUBLE>').`cartValue`) = 0 THEN NULL ELSE try_element_at(array_sort(collect_list(from_json(payload, 'struct<`cartValue`:DOUBLE>').`cartValue`)), CAST(greatest(1, ceil(0.99 * count(from_json(payload, 'struct<`cartValue`:DOUBLE>').`cartValue`) - 1E-09)) AS INT)) END AS `p99_cart`", spark, StringComparison.Ordinal);
        Assert.Contains("arrayElement(arraySort(groupArray(if(JSONType(payload, 'cartValue') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'cartValue'), NULL))), toUInt64(greatest(1, ceil(0.99 * count(if(JSONType(payload, 'cartValue') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'cartValue'), NULL)) - 1E-09))))", clickHouse, StringComparison.Ordinal);
    }

    [Fact]
    public void Literal_EscapesQuotesAndBackslashes()
    {
        Assert.Equal(@"'it\'s a \\ test'", FieldSql.SparkLiteral(@"it's a \ test"));
    }

    private static void AssertBalanced(string sql)
    {
        var depth = 0;
        char? quote = null;
        for (var i = 0; i < sql.Length; i++)
        {
            var c = sql[i];
            if (quote is { } q)
            {
                if (c == '\\' && q == '\'')
                {
                    i++;
                }
                else if (c == q)
                {
                    quote = null;
                }

                continue;
            }

            switch (c)
            {
                case '\'' or '`':
                    quote = c;
                    break;
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    Assert.True(depth >= 0, $"unbalanced ')' at {i}");
                    break;
            }
        }

        Assert.Null(quote);
        Assert.Equal(0, depth);
    }

    [GeneratedRegex(@" AS `([^`]+)`(?:,|$)")]
    private static partial Regex AliasRegex();
}
