using System.Text;
using LambdaPlatform.Serving.Views;
using Microsoft.Extensions.Time.Testing;

namespace LambdaPlatform.Serving.Tests;

/// <summary>The answer cache's rules: validity, single flight, refresh ahead, and what a failing query leaves.</summary>
public sealed class AnswerCacheTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(60);
    private readonly FakeTimeProvider _clock = new();
    private readonly AnswerCache<byte[]> _cache;
    private int _queries;

    public AnswerCacheTests() => _cache = new AnswerCache<byte[]>(Ttl, 10_000, _clock);

    [Fact]
    public async Task ValidAnswer_IsServedFromMemory_UntilItsTtl_ThenTheCallerQueriesAgain()
    {
        var first = await GetAsync("k", changed: _ => false);
        var second = await GetAsync("k", changed: _ => false);
        Assert.False(first.Hit);
        Assert.True(second.Hit);
        Assert.Same(first.Answer, second.Answer);
        Assert.Equal(1, _queries);

        _clock.Advance(Ttl);
        var expired = await GetAsync("k", changed: _ => false);
        Assert.False(expired.Hit);
        Assert.Equal(2, _queries);
    }

    [Fact]
    public async Task ChangedRange_IsNeverServedFromMemory()
    {
        var first = await GetAsync("k", changed: _ => false);
        var afterChange = await GetAsync("k", changed: since => since <= first.Answer.Since);
        Assert.False(afterChange.Hit);
        Assert.Equal(2, _queries);
        Assert.True(afterChange.Answer.Since >= first.Answer.Since);
    }

    [Fact]
    public async Task ConcurrentMisses_CostOneQuery_AndAllGetItsAnswer()
    {
        var release = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var callers = Enumerable.Range(0, 50).Select(_ => _cache.GetAsync("k", _ => false, _ => { Interlocked.Increment(ref _queries); return release.Task; }, CancellationToken.None).AsTask()).ToList();
        Assert.All(callers, c => Assert.False(c.IsCompleted));
        release.SetResult(Encoding.UTF8.GetBytes("[1]"));
        var answers = await Task.WhenAll(callers);
        Assert.Equal(1, _queries);
        Assert.Equal(1, _cache.Queries);
        Assert.All(answers, a => Assert.Same(answers[0].Answer, a.Answer));
    }

    [Fact]
    public async Task QueryInFlight_StartedBeforeAChange_IsNotJoined()
    {
        var slow = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var before = _cache.GetAsync("k", _ => false, _ => { Interlocked.Increment(ref _queries); return slow.Task; }, CancellationToken.None).AsTask();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        var changeAt = _clock.GetTimestamp();
        var after = await _cache.GetAsync("k", since => since < changeAt, _ => { Interlocked.Increment(ref _queries); return Task.FromResult(Encoding.UTF8.GetBytes("[2]")); }, CancellationToken.None);
        Assert.Equal(2, _queries);
        Assert.Equal("[2]", Encoding.UTF8.GetString(after.Answer.Value));

        // The overtaken query ends later: its older answer does not replace the newer one.
        slow.SetResult(Encoding.UTF8.GetBytes("[1]"));
        Assert.Equal("[1]", Encoding.UTF8.GetString((await before).Answer.Value));
        var now = await _cache.GetAsync("k", since => since < changeAt, _ => throw new InvalidOperationException("not expected to query"), CancellationToken.None);
        Assert.True(now.Hit);
        Assert.Equal("[2]", Encoding.UTF8.GetString(now.Answer.Value));
    }

    [Fact]
    public async Task AnswerAskedForInItsLastQuarter_IsRefreshedAhead_SoNoCallerWaitsWhenTheTtlExpires()
    {
        await GetAsync("k", changed: _ => false);
        _clock.Advance(Ttl * 0.8);
        var late = await GetAsync("k", changed: _ => false);
        Assert.True(late.Hit);
        await WaitForAsync(() => _queries == 2); // the refresh runs in the background

        _clock.Advance(Ttl * 0.3); // past the first answer's TTL, within the refreshed one's
        var afterExpiry = await GetAsync("k", changed: _ => false);
        Assert.True(afterExpiry.Hit);
        Assert.Equal(2, _queries);
    }

    [Fact]
    public async Task AnswerAskedForBeforeItsLastQuarter_IsNotRefreshed()
    {
        await GetAsync("k", changed: _ => false);
        _clock.Advance(Ttl * 0.7);
        Assert.True((await GetAsync("k", changed: _ => false)).Hit);
        await Task.Delay(50);
        Assert.Equal(1, _queries);
    }

    [Fact]
    public async Task FailingQuery_FailsItsCallers_AndTheNextCallQueriesAgain()
    {
        var failing = _cache.GetAsync("k", _ => false, _ => Task.FromException<byte[]>(new TimeoutException("clickhouse down")), CancellationToken.None);
        await Assert.ThrowsAsync<TimeoutException>(async () => await failing);
        var next = await GetAsync("k", changed: _ => false);
        Assert.False(next.Hit);
        Assert.Equal(1, _queries);
    }

    [Fact]
    public async Task FailingRefreshAhead_LeavesTheAnswerServedUntilItsTtl()
    {
        var first = await GetAsync("k", changed: _ => false);
        _clock.Advance(Ttl * 0.9);
        var served = await _cache.GetAsync("k", _ => false, _ => Task.FromException<byte[]>(new TimeoutException("clickhouse down")), CancellationToken.None);
        Assert.True(served.Hit);
        Assert.Same(first.Answer, served.Answer);
        _clock.Advance(Ttl * 0.2);
        Assert.False((await GetAsync("k", changed: _ => false)).Hit);
    }

    [Fact]
    public async Task CallerThatGivesUp_DoesNotCancelTheQueryOthersWaitFor()
    {
        var release = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var impatient = new CancellationTokenSource();
        var gaveUp = _cache.GetAsync("k", _ => false, ct => { Assert.False(ct.CanBeCanceled); return release.Task; }, impatient.Token).AsTask();
        var waits = _cache.GetAsync("k", _ => false, _ => throw new InvalidOperationException("joins the flight"), CancellationToken.None).AsTask();
        await impatient.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gaveUp);
        release.SetResult(Encoding.UTF8.GetBytes("[3]"));
        Assert.Equal("[3]", Encoding.UTF8.GetString((await waits).Answer.Value));
    }

    [Fact]
    public async Task ZeroTtl_KeepsNothing_ButStillCollapsesConcurrentQueries()
    {
        var cache = new AnswerCache<byte[]>(TimeSpan.Zero, 10_000, _clock);
        var release = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var two = new[] { cache.GetAsync("k", _ => false, _ => release.Task, CancellationToken.None).AsTask(), cache.GetAsync("k", _ => false, _ => release.Task, CancellationToken.None).AsTask() };
        release.SetResult([]);
        await Task.WhenAll(two);
        Assert.Equal(1, cache.Queries);
        Assert.False((await cache.GetAsync("k", _ => false, _ => Task.FromResult<byte[]>([]), CancellationToken.None)).Hit);
        Assert.Equal(2, cache.Queries);
    }

    private async Task<(Cached<byte[]> Answer, bool Hit)> GetAsync(string key, Func<long, bool> changed) =>
        await _cache.GetAsync(key, changed, _ =>
        {
            var n = Interlocked.Increment(ref _queries);
            return Task.FromResult(Encoding.UTF8.GetBytes($"[{n}]"));
        }, CancellationToken.None);

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.True(condition());
    }
}
