using CsCheck;
using LambdaPlatform.Speed.Views;

namespace LambdaPlatform.Speed.Tests;

/// <summary>The dedupe window against a plain model: a list of the ids it took, of which it remembers the newest generations.</summary>
public sealed class DedupeWindowTests
{
    [Fact]
    public void Contains_AgreesWithTheModel_ForGeneratedAddsAndLookups()
    {
        var gen = from capacity in Gen.Int[1, 40]
                  from ops in Gen.Select(Gen.Bool, Gen.Int[0, 120]).List[0, 400]
                  select (capacity, ops);
        gen.Sample(t =>
        {
            var (capacity, ops) = t;
            var window = new DedupeWindow(capacity);
            var taken = new List<Guid>(); // effective insertions, in order
            foreach (var (add, n) in ops)
            {
                // Small numbers collide on purpose; 0 is the all-zero id, which the table keeps aside.
                var id = new Guid(n, 0, 0, new byte[8]);
                var remembered = Remembered(taken, capacity);
                Assert.Equal(remembered.Contains(id), window.Contains(id));
                if (add)
                {
                    if (!remembered.Contains(id))
                    {
                        taken.Add(id);
                    }

                    window.Add(id);
                }
            }
        }, iter: 300);
    }

    [Fact]
    public void Window_RemembersAtLeastCapacityIds_AndForgetsOlderThanTwiceIt()
    {
        var window = new DedupeWindow(1_000);
        var ids = Enumerable.Range(0, 5_000).Select(_ => Guid.NewGuid()).ToList();
        ids.ForEach(window.Add);
        Assert.All(ids[^1_000..], id => Assert.True(window.Contains(id)));
        Assert.All(ids[..3_000], id => Assert.False(window.Contains(id)));
        Assert.False(window.Contains(Guid.NewGuid()));
    }

    /// <summary>The model: the current generation holds the last ((n − 1) mod C) + 1 insertions, the previous one C more.</summary>
    private static HashSet<Guid> Remembered(List<Guid> taken, int capacity)
    {
        var n = taken.Count;
        if (n == 0)
        {
            return [];
        }

        var kept = Math.Min(n, (n > capacity ? capacity : 0) + ((n - 1) % capacity) + 1);
        return [.. taken[(n - kept)..]];
    }
}
