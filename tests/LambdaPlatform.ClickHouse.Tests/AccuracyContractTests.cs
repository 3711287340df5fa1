using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Serving.Store;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// The accuracy report's SQL on chDB 26.5 and clickhouse-server 18.16: the comparison of a day's merged real-time rows
/// with its batch rows (<see cref="AccuracyCheck.CompareAsync"/>), and the <c>lambda_accuracy</c> table's DDL, insert and
/// select through <see cref="ServingStore"/>, a later report of a day replacing an earlier one. Each test works in its
/// own database.
/// </summary>
public abstract class AccuracyContractTests(IClickHouse clickHouse)
{
    private static readonly DateTime Ten = new(2026, 10, 1, 10, 0, 0, DateTimeKind.Utc);

    private static readonly ViewDefinition Probe = ViewLoader.Parse("""
        view: accuracy_contract
        events: [user.action.checkout]
        bucket: 1h
        dimensions:
          store: payload.location
        measures:
          orders: count
          revenue: sum(payload.cartValue)
          smallest: min(payload.cartValue)
          buyers: distinct(userId)
          p50: quantile(payload.cartValue, 0.5)
          top_users: topk(userId, 2)
        """, "accuracy_contract.yaml", EventSchemaRegistry.LoadDefault());

    [Fact]
    public async Task CompareWriteRead_RoundTrip_AndALaterReportOfTheDayReplacesTheEarlier()
    {
        var database = "db_" + Guid.NewGuid().ToString("N");
        await clickHouse.ExecuteAsync($"CREATE DATABASE {database}");
        var view = new ViewSql(Probe, database);
        var store = new ServingStore(clickHouse);
        await store.EnsureViewAsync(view);
        Assert.Empty(await store.ReadAccuracyAsync(view)); // no table yet: no report

        // Real time: berlin (u1 10, u2 20, u3 30) and paris (u4 5), made by the measures' own states.
        await clickHouse.InsertAsync(view.RealtimeTable, [.. view.RealtimeColumns.Select(c => new ClickHouseColumn(c.Name, c.Type))],
        [
            RealtimeRow("berlin", offset: 0, ("u1", 10), ("u2", 20), ("u3", 30)),
            RealtimeRow("paris", offset: 3, ("u4", 5)),
        ]);

        // Batch: berlin with one order more than real time counted, and a bucket real time never saw.
        await clickHouse.InsertAsync(view.BatchTable, [.. view.BatchColumns.Select(c => new ClickHouseColumn(c.Name, c.Type))],
        [
            [Ten, "berlin", 4UL, 60.0, 10.0, 3UL, 20.0, new[] { "u1", "u2" }, new[] { 1UL, 1UL }],
            [Ten.AddHours(1), "rome", 1UL, 8.0, 8.0, 1UL, 8.0, new[] { "u9" }, new[] { 1UL }],
        ]);

        var report = await AccuracyCheck.CompareAsync(clickHouse, view, DateOnly.FromDateTime(Ten), Ten.AddDays(2).AddSeconds(0.7));
        Assert.Equal((2L, 2L, Ten.AddDays(2)), (report.RealtimeRows, report.BatchRows, report.ComparedAt));
        var measures = report.Measures.ToDictionary(m => m.Measure);
        Assert.All(report.Measures, m => Assert.Equal(3, m.BucketsCompared));
        Assert.Equal(["2026-10-01 10:00:00 store=berlin", "2026-10-01 10:00:00 store=paris", "2026-10-01 11:00:00 store=rome"], measures["orders"].OutOfBoundBuckets);
        Assert.Equal(["2026-10-01 10:00:00 store=paris", "2026-10-01 11:00:00 store=rome"], measures["revenue"].OutOfBoundBuckets);
        Assert.Equal((1.0, 0.75), (measures["orders"].MaxRelativeError, measures["orders"].MeanRelativeError)); // 1/4, 1, 1
        Assert.Equal(1, measures["top_users"].TopKMisses); // rome's u9
        Assert.True(report.HasWarning);

        await store.WriteAccuracyAsync(view, report);
        Assert.Equivalent(report, Assert.Single(await store.ReadAccuracyAsync(view)), strict: true);

        // The same day again (a re-run), later: it replaces the first report; another day is kept beside it.
        var later = report with { ComparedAt = report.ComparedAt.AddHours(1), Measures = [.. report.Measures.Select(m => m with { BucketsOutOfBound = 0, OutOfBoundBuckets = [] })] };
        var other = report with { Day = report.Day.AddDays(-1), Measures = [report.Measures[0]] };
        await store.WriteAccuracyAsync(view, later);
        await store.WriteAccuracyAsync(view, other);
        var reports = await store.ReadAccuracyAsync(view);
        Assert.Equal([report.Day, other.Day], reports.Select(r => r.Day));
        Assert.Equivalent(later, reports[0], strict: true);
        Assert.Equivalent(other, reports[1], strict: true);
        Assert.Equal([report.Day], (await store.ReadAccuracyAsync(view, days: 1)).Select(r => r.Day));
    }

    private static object?[] RealtimeRow(string store, long offset, params (string User, double Cart)[] events)
    {
        var states = Probe.Measures.Select(m => m.NewState()).ToList();
        foreach (var (user, cart) in events)
        {
            for (var i = 0; i < states.Count; i++)
            {
                var path = Probe.Measures[i].Path;
                states[i].Add(path is null ? FieldValue.Missing : path.Root == FieldRoot.UserId ? FieldValue.OfText(user) : FieldValue.Of(cart));
            }
        }

        var row = new List<object?> { Ten, store, (ushort)0, (ulong)offset, (ulong)(offset + events.Length - 1) };
        states.ForEach(s => s.WriteTo(row));
        return [.. row];
    }
}

[Collection(ChDbGroup.Name)]
public sealed class ChDbAccuracyContractTests(ChDbFixture fixture) : AccuracyContractTests(fixture.Backend);

[Collection(ServerGroup.Name)]
public sealed class ServerAccuracyContractTests(ServerFixture fixture) : AccuracyContractTests(fixture.Backend);
