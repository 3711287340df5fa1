using LambdaPlatform.Schemas.Sketches;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>The real-time sketches checked against exact answers on generated data.</summary>
public sealed class SketchTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(1_000)]
    [InlineData(50_000)]
    [InlineData(1_000_000)]
    public void HyperLogLog_EstimatesWithinThreeStandardErrors(int distinct)
    {
        var hll = new HyperLogLog();
        for (var i = 0; i < distinct; i++)
        {
            hll.Add("user-" + i);
            hll.Add("user-" + (i / 2)); // repeats must not count
        }

        var error = Math.Abs((double)hll.Estimate() - distinct) / distinct;
        Assert.True(error <= 3 * HyperLogLog.StandardError, $"estimate {hll.Estimate()} for {distinct}: error {error:P2}");
    }

    [Fact]
    public void HyperLogLog_MergeEqualsUnion_AcrossInstances()
    {
        var a = new HyperLogLog();
        var b = new HyperLogLog();
        var all = new HyperLogLog();
        for (var i = 0; i < 200_000; i++)
        {
            var value = "u" + (i % 150_000);
            (i % 2 == 0 ? a : b).Add(value);
            all.Add(value);
        }

        a.Merge(b);
        Assert.Equal(all.Estimate(), a.Estimate());
        Assert.True(Math.Abs((double)a.Estimate() - 150_000) / 150_000 <= 3 * HyperLogLog.StandardError);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.99)]
    [InlineData(0.999)]
    public void DDSketch_QuantileWithinRelativeAccuracy(double q)
    {
        var random = new Random(3);
        var values = Enumerable.Range(0, 100_000).Select(_ => Math.Round(Math.Exp(4 + (1.2 * Normal(random))), 2)).ToArray();
        var sketch = new DDSketch();
        foreach (var v in values)
        {
            sketch.Add(v);
        }

        Array.Sort(values);
        var exact = values[(int)QuantileMeasure.NearestRank(q, (ulong)values.Length) - 1];
        var estimate = sketch.Quantile(q)!.Value;
        Assert.True(Math.Abs(estimate - exact) <= DDSketch.RelativeAccuracy * exact + 1e-12, $"q={q}: estimate {estimate}, exact {exact}");
    }

    [Fact]
    public void DDSketch_HandlesZeroAndNegativeValues()
    {
        var sketch = new DDSketch();
        double[] values = [-50, -1, 0, 0, 1, 50];
        foreach (var v in values)
        {
            sketch.Add(v);
        }

        Assert.Equal(-50, sketch.Quantile(0)!.Value, 0.5);
        Assert.Equal(0, sketch.Quantile(0.5)!.Value);
        Assert.Equal(50, sketch.Quantile(1)!.Value, 0.5);
    }

    [Fact]
    public void DDSketch_Quantile_IsTheLargerOfTwoValues_ForP99()
    {
        // Nearest rank: the ceil(0.99 * 2) = 2nd smallest of two orders is the larger one.
        var sketch = new DDSketch();
        sketch.Add(79.78);
        sketch.Add(49.77);
        Assert.Equal(79.78, sketch.Quantile(0.99)!.Value, 79.78 * DDSketch.RelativeAccuracy);
        Assert.Null(new DDSketch().Quantile(0.99));
    }

    [Theory]
    [InlineData(0.99, 2UL, 2UL)]
    [InlineData(0.5, 2UL, 1UL)]
    [InlineData(0.5, 3UL, 2UL)]
    [InlineData(0.07, 100UL, 7UL)]
    [InlineData(0.29, 100UL, 29UL)]
    [InlineData(0.99, 100UL, 99UL)]
    [InlineData(0.999, 1000UL, 999UL)]
    [InlineData(0.01, 10UL, 1UL)]
    [InlineData(0.25, 4UL, 1UL)]
    public void NearestRank_IsCeilingOfQTimesN(double q, ulong n, ulong rank)
    {
        Assert.Equal(rank, QuantileMeasure.NearestRank(q, n));
    }

    [Fact]
    public void DDSketch_MergeEqualsSingleSketch()
    {
        var a = new DDSketch();
        var b = new DDSketch();
        var all = new DDSketch();
        for (var i = 1; i <= 10_000; i++)
        {
            (i % 3 == 0 ? a : b).Add(i);
            all.Add(i);
        }

        a.Merge(b);
        Assert.Equal(all.Quantile(0.99), a.Quantile(0.99));
        Assert.Equal(all.Count, a.Count);
    }

    [Fact]
    public void SpaceSaving_KeepsHeavyHittersWithBoundedError()
    {
        var random = new Random(5);
        var exact = new Dictionary<string, int>();
        var sketch = new SpaceSaving(64);
        const int N = 100_000;
        for (var i = 0; i < N; i++)
        {
            // Zipf-like: a few values are very frequent.
            var value = "sku-" + (int)Math.Floor(Math.Pow(random.NextDouble(), 3) * 1000);
            exact[value] = exact.GetValueOrDefault(value) + 1;
            sketch.Add(value);
        }

        var trueTop = exact.OrderByDescending(kv => kv.Value).Take(5).Select(kv => kv.Key).ToHashSet();
        var top = sketch.Top(5);
        Assert.Equal(trueTop, top.Select(t => t.Key).ToHashSet());
        foreach (var (value, count) in top)
        {
            Assert.InRange((long)count - exact[value], 0, N / 64);
        }
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextDouble())) * Math.Cos(2.0 * Math.PI * random.NextDouble());
}
