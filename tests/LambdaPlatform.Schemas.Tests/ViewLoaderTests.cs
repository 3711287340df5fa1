using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Schemas.Tests;

public sealed class ViewLoaderTests
{
    private static readonly EventSchemaRegistry Schemas = EventSchemaRegistry.LoadDefault();

    private const string Valid = """
        view: checkout_revenue
        events: [user.action.checkout]
        bucket: 1m
        dimensions:
          store: payload.location
        measures:
          orders: count
          revenue: sum(payload.cartValue)
        """;

    private static SchemaLoadException Fails(string yaml) =>
        Assert.Throws<SchemaLoadException>(() => ViewLoader.Parse(yaml, "views/test.yaml", Schemas));

    [Fact]
    public void LoadAll_ReadsShippedViews()
    {
        var views = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), Schemas);
        var checkout = Assert.Single(views, v => v.Name == "checkout_revenue");
        Assert.Equal(["user.action.checkout"], checkout.EventTypes!);
        Assert.Equal(TimeSpan.FromMinutes(1), checkout.Bucket.Size);
        Assert.Equal(TimeSpan.FromHours(1), checkout.AllowedLateness);
        Assert.Equal("store", Assert.Single(checkout.Dimensions).Name);
        Assert.Equal(["count", "sum", "distinct", "quantile"], checkout.Measures.Select(m => m.Kind));
        Assert.Equal(0.99, Assert.IsType<QuantileMeasure>(checkout.Measures[3]).Q);
        var activity = Assert.Single(views, v => v.Name == "activity_by_type");
        Assert.Null(activity.EventTypes);
        Assert.Equal(["eventType", "source"], activity.Dimensions.Select(d => d.Name));
        Assert.Equal(FieldRoot.Source, activity.Dimensions[1].Path.Root);
    }

    [Fact]
    public void Parse_NamesLineAndField_WhenPathIsUnknown()
    {
        var e = Fails(Valid.Replace("payload.location", "payload.city", StringComparison.Ordinal));
        Assert.Equal("views/test.yaml", e.File);
        Assert.Equal("line 5, column 10: dimensions.store", e.Location);
        Assert.Contains("unknown path 'payload.city'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadAll_Fails_WhenTheFolderHoldsNoDefinitions()
    {
        var dir = Path.Combine(Path.GetTempPath(), "views-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "checkout_revenue.yaml.txt"), "view: x");
            var e = Assert.Throws<SchemaLoadException>(() => ViewLoader.LoadAll(dir, Schemas));
            Assert.Equal(dir, e.File);
            Assert.Contains("no view definitions", e.Problem, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Parse_RejectsSumOfText()
    {
        var e = Fails(Valid.Replace("sum(payload.cartValue)", "sum(payload.currency)", StringComparison.Ordinal));
        Assert.StartsWith("line 8", e.Location, StringComparison.Ordinal);
        Assert.Contains("measures.revenue", e.Location, StringComparison.Ordinal);
        Assert.Contains("sum needs a number, but payload.currency is a string", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RejectsDuplicateNames()
    {
        var e = Fails(Valid + "\n  store: count");
        Assert.Contains("duplicate name 'store'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bucket: 1m", "bucket: 7m", "not a bucket size")]
    [InlineData("bucket: 1m", "bucket: 2d", "not a bucket size")]
    [InlineData("events: [user.action.checkout]", "events: [user.action.teleport]", "unknown event type 'user.action.teleport'")]
    [InlineData("view: checkout_revenue", "view: Checkout-Revenue", "not a valid view name")]
    [InlineData("orders: count", "orders: median(payload.cartValue)", "unknown measure 'median'")]
    [InlineData("orders: count", "orders: quantile(payload.cartValue, 1.5)", "q must be a number between 0 and 1")]
    [InlineData("orders: count", "orders: topk(payload.location, 0)", "k must be a whole number")]
    [InlineData("orders: count", "orders: sum(payload.cartValue, 2)", "sum takes a path, e.g. sum(path)")]
    [InlineData("orders: count", "orders: count(payload.cartValue)", "count takes no arguments")]
    [InlineData("orders: count", "orders: sum(payload.location)", "sum needs a number, but payload.location is a string")]
    [InlineData("orders: count", "orders: distinct(timestamp)", "timestamp is what the view buckets by")]
    [InlineData("orders: count", "orders__x: count", "a double underscore is reserved")]
    [InlineData("orders: count", "orders: count\n  buyers: distinct(userId)\n  buyers_hll: count", "duplicate name 'buyers_hll'")]
    [InlineData("bucket: 1m", "bucket: 1m\nwindow: 5m", "unknown field 'window'")]
    [InlineData("view: checkout_revenue\n", "", "required field 'view' is missing")]
    public void Parse_ExplainsTheMistake(string replace, string with, string expected)
    {
        var e = Fails(Valid.Replace(replace, with, StringComparison.Ordinal));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("views/test.yaml: line ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ReportsYamlSyntaxErrorsWithLine()
    {
        var e = Fails("view: x\nmeasures: [unclosed\n");
        Assert.StartsWith("line ", e.Location, StringComparison.Ordinal);
        Assert.Contains("not valid YAML", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ReportsLineInsteadOfThrowing_WhenAFlowSequenceIsLeftOpenBeforeMoreKeys()
    {
        var e = Fails(Valid.Replace("orders: count", "orders: [count", StringComparison.Ordinal));
        Assert.StartsWith("line ", e.Location, StringComparison.Ordinal);
        Assert.Contains("not valid YAML", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RejectsPayloadPathWithDifferentTypesAcrossEvents()
    {
        var e = Fails(Valid.Replace("events: [user.action.checkout]", "events: all", StringComparison.Ordinal).Replace("sum(payload.cartValue)", "distinct(payload.nothing)", StringComparison.Ordinal));
        Assert.Contains("no schema of", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kinds_HoldsEveryMeasureType_ByItsKeyword()
    {
        var types = typeof(Measure).Assembly.GetTypes().Where(t => t.IsSealed && t.IsSubclassOf(typeof(Measure))).ToList();
        Assert.Equal(7, types.Count);
        Assert.Equal(["count", "distinct", "max", "min", "quantile", "sum", "topk"], Measure.Kinds.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Parse_AcceptsAFieldOnlySomeEventTypesHave_WithTheUnionOfItsTypes()
    {
        var view = ViewLoader.Parse(Valid.Replace("events: [user.action.checkout]", "events: all", StringComparison.Ordinal)
            .Replace("sum(payload.cartValue)", "min(payload.price)", StringComparison.Ordinal), "t.yaml", Schemas);
        var min = Assert.IsType<MinMeasure>(view.Measures.Single(m => m.Kind == "min"));
        Assert.Equal(FieldTypes.Number, min.Path!.Types);
        Assert.Equal(MeasureInput.Number, min.Input);
    }

    [Fact]
    public void Parse_AcceptsFilterAndLateness()
    {
        var view = ViewLoader.Parse(Valid + "\nfilter:\n  payload.currency: [EUR, USD]\nallowedLateness: 10m\n", "t.yaml", Schemas);
        var filter = Assert.Single(view.Filters);
        Assert.Equal(["EUR", "USD"], filter.Values);
        Assert.Equal(TimeSpan.FromMinutes(10), view.AllowedLateness);
    }
}
