using System.Globalization;
using System.Security.Cryptography;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Serving.Store;

/// <summary>A change of a view's served rows: buckets in [<paramref name="FromBucket"/>, <paramref name="ToBucket"/>] may answer differently now.</summary>
/// <param name="View">The view.</param>
/// <param name="FromBucket">The first bucket changed (UTC).</param>
/// <param name="ToBucket">The last bucket changed (UTC, inclusive).</param>
/// <param name="Source"><c>speed</c> (a flush) or <c>batch</c> (a day swapped, W moved).</param>
public sealed record ViewChange(string View, DateTime FromBucket, DateTime ToBucket, string Source);

/// <summary>A change marker as read back, with what identifies it.</summary>
/// <param name="Change">The change.</param>
/// <param name="ChangeId">Random id given by the writer (tells markers of the same second apart).</param>
/// <param name="InsertedAt">When the serving ClickHouse received it (the server's clock, whole seconds, UTC).</param>
public sealed record ViewChangeMarker(ViewChange Change, ulong ChangeId, DateTime InsertedAt);

/// <summary>Per-view change markers (this file of <see cref="ServingStore"/>): how API instances learn that cached answers went stale.</summary>
public sealed partial class ServingStore
{
    private static readonly ClickHouseColumn[] ViewChangeColumns =
        [new("view", "String"), new("fromBucket", "DateTime"), new("toBucket", "DateTime"), new("source", "String"), new("changeId", "UInt64"), new("instance", "String")];

    /// <summary>
    /// Records changes of views' served rows. Write it after the change is durable (the rows inserted, the partition
    /// swapped): a reader that sees the marker and then queries sees the change.
    /// </summary>
    public async Task RecordViewChangesAsync(IReadOnlyCollection<ViewChange> changes, string instance, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count == 0)
        {
            return;
        }

        await ClickHouse.InsertAsync(ViewChangesTable, ViewChangeColumns,
            changes.Select(c => new object?[] { c.View, c.FromBucket, c.ToBucket, c.Source, BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)), instance }),
            cancellationToken);
        LocalViewChanges.Publish(changes);
    }

    /// <summary>The serving ClickHouse's clock (whole seconds, UTC): the clock of <see cref="ViewChangeMarker.InsertedAt"/>.</summary>
    public async Task<DateTime> ReadServerTimeAsync(CancellationToken cancellationToken = default) =>
        DateTime.UnixEpoch.AddSeconds(await ScalarAsync("SELECT toUnixTimestamp(now())", cancellationToken));

    /// <summary>Every change marker the server received at or after <paramref name="since"/> (server clock), oldest first.</summary>
    public async Task<IReadOnlyList<ViewChangeMarker>> ReadViewChangesAsync(DateTime since, CancellationToken cancellationToken = default)
    {
        var result = new List<ViewChangeMarker>();
        foreach (var f in await RowsAsync(
            $"SELECT view, toUnixTimestamp(fromBucket), toUnixTimestamp(toBucket), source, changeId, toUnixTimestamp(insertedAt) FROM {ViewChangesTable} "
            + $"WHERE insertedAt >= toDateTime({ToUnix(since)}, 'UTC') ORDER BY insertedAt", cancellationToken))
        {
            result.Add(new ViewChangeMarker(
                new ViewChange(Unescape(f[0]), FromUnix(long.Parse(f[1], CultureInfo.InvariantCulture)), FromUnix(long.Parse(f[2], CultureInfo.InvariantCulture)), Unescape(f[3])),
                ulong.Parse(f[4], CultureInfo.InvariantCulture), FromUnix(long.Parse(f[5], CultureInfo.InvariantCulture))));
        }

        return result;
    }
}

/// <summary>
/// Change markers written in this process, told at once to listeners in this process (an API in the same process as the speed
/// layer or the batch, as in <c>lambda up</c>, drops stale answers immediately instead of at its next poll). Only an
/// optimisation on top of the markers in ClickHouse, which are what every other process reads. Thread-safe.
/// </summary>
public static class LocalViewChanges
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, Action<IReadOnlyCollection<ViewChange>>> Listeners = new();
    private static long _next;

    /// <summary>Calls <paramref name="listener"/> after each write of markers in this process (on the writer's thread; keep it short) until disposed.</summary>
    public static IDisposable Subscribe(Action<IReadOnlyCollection<ViewChange>> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        var id = Interlocked.Increment(ref _next);
        Listeners[id] = listener;
        return new Subscription(id);
    }

    /// <summary>Tells every listener; a listener that throws is skipped (the markers in ClickHouse still tell it at its next poll).</summary>
    internal static void Publish(IReadOnlyCollection<ViewChange> changes)
    {
        foreach (var listener in Listeners.Values)
        {
            try
            {
                listener(changes);
            }
#pragma warning disable CA1031 // a listener's failure must not fail the writer's flush
            catch (Exception)
#pragma warning restore CA1031
            {
                // Best effort: see the summary.
            }
        }
    }

    private sealed class Subscription(long id) : IDisposable
    {
        public void Dispose() => Listeners.TryRemove(id, out _);
    }
}
