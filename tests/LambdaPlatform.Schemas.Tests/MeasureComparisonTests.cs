using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// Each kind compares a real-time value with the exact one by its own rule (<see cref="Measure.Compare"/>): exact kinds
/// on any difference (a sum beyond rounding), approximate kinds beyond their stated bound, top-k by misses; a side with no
/// row has the kind's value over no events.
/// </summary>
public sealed class MeasureComparisonTests
{
    private static readonly Dictionary<string, Measure> Measures = ViewLoader.Parse("""
        view: comparison_probe
        events: [user.action.checkout]
        bucket: 1h
        measures:
          orders: count
          revenue: sum(payload.cartValue)
          smallest: min(payload.cartValue)
          largest: max(payload.cartValue)
          buyers: distinct(userId)
          p99: quantile(payload.cartValue, 0.99)
          top: topk(userId, 3)
        """, "comparison_probe.yaml", EventSchemaRegistry.LoadDefault()).Measures.ToDictionary(m => m.Name);

    [Theory]
    [InlineData("orders", "10", "10", false, 0.0)]
    [InlineData("orders", "11", "10", true, 0.1)]
    [InlineData("revenue", "100.00000000000001", "100", false, 1.4210854715202004e-16)]
    [InlineData("revenue", "100.001", "100", true, 1.0000000000331966e-05)]
    [InlineData("smallest", "1.5", "1.5", false, 0.0)]
    [InlineData("largest", "2", "1.5", true, 0.3333333333333333)]
    [InlineData("buyers", "1040", "1000", false, 0.04)]
    [InlineData("buyers", "1050", "1000", true, 0.05)]
    [InlineData("p99", "99", "100", false, 0.01)]
    [InlineData("p99", "98.9", "100", true, 0.010999999999999943)]
    [InlineData("revenue", "\\N", "\\N", false, 0.0)]
    [InlineData("revenue", "\\N", "3", true, 1.0)]
    [InlineData("orders", "1", "0", true, 1.0)]
    public void Compare_UsesTheKindsBound(string measure, string realtime, string exact, bool outOfBound, double error)
    {
        var comparison = Measures[measure].Compare([realtime], [exact]);
        Assert.Equal(outOfBound, comparison.OutOfBound);
        Assert.Equal(error, comparison.RelativeError!.Value, 15);
    }

    [Fact]
    public void Compare_TakesTheValueOverNoEvents_ForASideWithoutARow()
    {
        Assert.Equal(new MeasureComparison(true, 1), Measures["orders"].Compare(null, ["4"]));
        Assert.Equal(new MeasureComparison(false, 0), Measures["orders"].Compare(["0"], null));
        Assert.Equal(new MeasureComparison(true, 1), Measures["buyers"].Compare(["3"], null));
        Assert.Equal(new MeasureComparison(false, 0), Measures["p99"].Compare(null, ["\\N"]));
        Assert.Equal(new MeasureComparison(true, 1), Measures["smallest"].Compare(null, ["7"]));
        Assert.Equal(new MeasureComparison(false, null, Misses: 2), Measures["top"].Compare(null, ["['a','b']", "[3,2]"]));
    }

    [Fact]
    public void Compare_CountsTopKMissesAndCountDifferences_AndIsNeverOutOfBound()
    {
        var comparison = Measures["top"].Compare(["['a','c','b']", "[9,5,4]"], ["['a','b','d']", "[7,6,5]"]);
        Assert.Equal(new MeasureComparison(false, null, Misses: 1, CountDifference: 2 + 2), comparison);
        Assert.Equal(new MeasureComparison(false, null), Measures["top"].Compare(["['it\\'s']", "[1]"], ["['it\\'s']", "[1]"]));
    }
}
