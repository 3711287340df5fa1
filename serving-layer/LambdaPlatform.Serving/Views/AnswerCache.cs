using System.Collections.Concurrent;

namespace LambdaPlatform.Serving.Views;

/// <summary>A cached value (a view answer's rows, a view's freshness) and the instant its ClickHouse query started (a <see cref="TimeProvider.GetTimestamp"/>).</summary>
public sealed record Cached<T>(T Value, long Since);

/// <summary>
/// The API's in-memory cache of what it reads from ClickHouse (answers' rows, views' freshness). Three rules:
/// <list type="bullet">
/// <item><b>Validity</b>: an answer whose query started at <c>s</c> is served while it is younger than the TTL and the caller's
/// <c>changedSince(s)</c> is false (the pipeline state's cache rule, <see cref="PipelineStateWatcher.ChangedSince"/>).</item>
/// <item><b>Single flight</b>: at most one query per key runs at a time. A caller that finds no valid answer joins the query in
/// flight for its key when that query started at a valid instant (<c>changedSince</c> of its start is false, the same rule as a
/// stored answer), else starts a new one; so a burst of misses costs ClickHouse one query, and a joiner never gets an answer the
/// rule would refuse.</item>
/// <item><b>Refresh ahead</b>: an answer served in the last quarter of its TTL starts a query in the background (single flight),
/// so a key asked for at least once per quarter TTL never expires in front of a caller: callers wait for ClickHouse only on a
/// change of their range or on a key not asked for lately.</item>
/// </list>
/// A query runs to its end even when the caller that started it goes away (others may be waiting; the ClickHouse client bounds
/// its time). At most <paramref name="maxEntries"/> values are kept (all are dropped when full); a zero <paramref name="ttl"/> keeps
/// none but still runs one query per key at a time. Thread-safe.
/// </summary>
/// <param name="ttl">How long a value may be served.</param>
/// <param name="maxEntries">Most values kept.</param>
/// <param name="clock">The clock of the timestamps.</param>
public sealed class AnswerCache<T>(TimeSpan ttl, int maxEntries, TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, Cached<T>> _answers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Flight> _flights = new(StringComparer.Ordinal);
    private long _queries;

    /// <summary>ClickHouse queries started so far (misses and refreshes, after single flight).</summary>
    public long Queries => Interlocked.Read(ref _queries);

    /// <summary>
    /// The answer of <paramref name="key"/>: from memory when valid (<c>Hit</c> true), else from <paramref name="query"/> (run
    /// once per key at a time).
    /// </summary>
    /// <param name="key">The answer's key (view, range, granularity, measures, filters).</param>
    /// <param name="changedSince">Whether an answer whose query started at the given timestamp may be stale.</param>
    /// <param name="query">Runs the query and returns the value; called with no cancellation (see the class remarks).</param>
    /// <param name="cancellationToken">Stops this caller's wait, not the query.</param>
    public async ValueTask<(Cached<T> Answer, bool Hit)> GetAsync(string key, Func<long, bool> changedSince, Func<CancellationToken, Task<T>> query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changedSince);
        ArgumentNullException.ThrowIfNull(query);
        if (ttl > TimeSpan.Zero && _answers.TryGetValue(key, out var cached) && !changedSince(cached.Since))
        {
            var age = clock.GetElapsedTime(cached.Since);
            if (age < ttl)
            {
                if (age >= ttl * 0.75)
                {
                    _ = Join(key, changedSince, query).Task; // refresh ahead; its failure leaves the answer to expire
                }

                return (cached, true);
            }
        }

        return (await Join(key, changedSince, query).Task.WaitAsync(cancellationToken), false);
    }

    /// <summary>The query in flight for <paramref name="key"/> if it started at a valid instant, else a new one.</summary>
    private Flight Join(string key, Func<long, bool> changedSince, Func<CancellationToken, Task<T>> query)
    {
        while (true)
        {
            var current = _flights.TryGetValue(key, out var f) ? f : null;
            if (current is not null && !changedSince(current.Started))
            {
                return current;
            }

            var mine = new Flight(clock.GetTimestamp());
            if (current is null ? _flights.TryAdd(key, mine) : _flights.TryUpdate(key, mine, current))
            {
                Interlocked.Increment(ref _queries);
                _ = FlyAsync(key, mine, query);
                return mine;
            }
        }
    }

    private async Task FlyAsync(string key, Flight flight, Func<CancellationToken, Task<T>> query)
    {
        Cached<T> answer;
        try
        {
            answer = new Cached<T>(await query(CancellationToken.None), flight.Started);
        }
        catch (Exception e)
        {
            _flights.TryRemove(new KeyValuePair<string, Flight>(key, flight));
            flight.Done.SetException(e);
            _ = flight.Done.Task.Exception; // observed here: a refresh ahead has no caller waiting
            return;
        }

        if (ttl > TimeSpan.Zero)
        {
            if (_answers.Count >= maxEntries)
            {
                _answers.Clear();
            }

            // Never replace a newer answer with an older one (a flight overtaken by one started after a change).
            _answers.AddOrUpdate(key, answer, (_, old) => old.Since > answer.Since ? old : answer);
        }

        // Out of the flights before its callers resume: a caller that comes after them never joins a finished flight.
        _flights.TryRemove(new KeyValuePair<string, Flight>(key, flight));
        flight.Done.SetResult(answer);
    }

    private sealed class Flight(long started)
    {
        public long Started { get; } = started;

        public TaskCompletionSource<Cached<T>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<Cached<T>> Task => Done.Task;
    }
}
