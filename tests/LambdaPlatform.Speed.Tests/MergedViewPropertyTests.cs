using System.Globalization;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Speed.Tests;

/// <summary>
/// Property tests of the time boundary in the merged view (Pinot's bugs): for generated sets of batch and
/// real-time buckets, W positions (none, before, inside, after the data), empty sides, real-time rows
/// below W (late data, or not yet removed by retention) and a batch load in flight (a staging table
/// holding rows not yet swapped in), every bucket is answered by exactly one side: batch below W,
/// real time at or above W; none is missing, none counted twice.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class MergedViewPropertyTests(PipelineFixture fixture)
{
    private static readonly DateTime Origin = new(2026, 11, 20, 0, 0, 0, DateTimeKind.Utc);
    private static readonly string[] Stores = ["berlin", "paris", "rome"];

    [Fact]
    public async Task MergedView_AnswersEachBucketFromExactlyOneSide_ForGeneratedCases()
    {
        var definition = ViewLoader.Parse("""
            view: boundary
            events: [user.action.checkout]
            bucket: 1h
            dimensions:
              store: payload.location
            measures:
              orders: count
              revenue: sum(payload.cartValue)
            """, "boundary.yaml", fixture.Schemas);

        for (var trial = 0; trial < 12; trial++)
        {
            var random = new Random(1000 + trial);
            var database = "prop_" + Guid.NewGuid().ToString("N")[..12];
            await fixture.ClickHouse.ExecuteAsync($"CREATE DATABASE {database}");
            var sql = new ViewSql(definition, database);
            foreach (var statement in sql.CreateServingObjects)
            {
                await fixture.ClickHouse.ExecuteAsync(statement);
            }

            // Generated sides: hours over 4 days; either side may be empty.
            var batch = trial % 5 == 1 ? [] : Keys(random, 0.4);
            var realtime = trial % 5 == 2 ? [] : Keys(random, 0.5);
            DateTime? w = (trial % 4) switch
            {
                0 => null,
                1 => Origin.AddDays(-1),
                2 => Origin.AddDays(random.Next(1, 4)),
                _ => Origin.AddDays(5),
            };

            var batchRows = batch.Select(k => new object?[] { k.Bucket, k.Store, (ulong)1000, 10.0 }).ToList();
            if (batchRows.Count > 0)
            {
                await fixture.ClickHouse.InsertAsync(sql.BatchTable, Columns(sql.BatchColumns), batchRows);
            }

            // Real time: several delta rows per key (partitions, flushes), one flush written twice.
            var realtimeRows = new List<object?[]>();
            var expectedRealtime = new Dictionary<(DateTime, string), ulong>();
            var offset = 0UL;
            foreach (var k in realtime)
            {
                for (var partition = 0; partition < 1 + random.Next(3); partition++)
                {
                    var orders = (ulong)(1 + random.Next(9));
                    var row = new object?[] { k.Bucket, k.Store, (ushort)partition, offset, offset + 10, orders, (double)orders };
                    realtimeRows.Add(row);
                    if (random.Next(4) == 0)
                    {
                        realtimeRows.Add(row); // replayed flush: same key, must not count twice
                    }

                    expectedRealtime[k] = expectedRealtime.GetValueOrDefault(k) + orders;
                    offset += 11;
                }
            }

            if (realtimeRows.Count > 0)
            {
                await fixture.ClickHouse.InsertAsync(sql.RealtimeTable, Columns(sql.RealtimeColumns), realtimeRows.Take(realtimeRows.Count / 2).ToList());
                await fixture.ClickHouse.InsertAsync(sql.RealtimeTable, Columns(sql.RealtimeColumns), realtimeRows.Skip(realtimeRows.Count / 2).ToList());
            }

            if (w is { } watermark)
            {
                await fixture.ClickHouse.ExecuteAsync($"INSERT INTO {sql.WatermarkTableName} (view, watermark, updatedAt) VALUES ('boundary', toDateTime({Unix(watermark)}, 'UTC'), now())");
            }

            // A batch load in flight: staged rows for every hour, not swapped in, must not show.
            var staging = sql.BatchTable + "_staging_inflight";
            await fixture.ClickHouse.ExecuteAsync(sql.CreateBatchTable(staging));
            await fixture.ClickHouse.InsertAsync(staging, Columns(sql.BatchColumns), Keys(new Random(trial), 1.0).Select(k => new object?[] { k.Bucket, k.Store, (ulong)999_999, 1.0 }).ToList());

            var cut = w ?? DateTime.UnixEpoch;
            var expected = batch.Where(k => k.Bucket < cut).Select(k => $"{k.Bucket:yyyy-MM-dd HH:mm:ss}|{k.Store}|1000|batch")
                .Concat(expectedRealtime.Where(kv => kv.Key.Item1 >= cut).Select(kv => $"{kv.Key.Item1:yyyy-MM-dd HH:mm:ss}|{kv.Key.Item2}|{kv.Value}|realtime"))
                .Order(StringComparer.Ordinal).ToList();
            var actual = await RowsAsync($"SELECT bucket, store, orders, side FROM {sql.MergedView}");
            Assert.True(expected.SequenceEqual(actual), $"trial {trial} (W={w:O}): expected {expected.Count} rows, got {actual.Count}; first difference: {expected.Except(actual).Concat(actual.Except(expected)).FirstOrDefault()}");
            await fixture.ClickHouse.ExecuteAsync($"DROP DATABASE {database}");
        }
    }

    private static List<(DateTime Bucket, string Store)> Keys(Random random, double density)
    {
        var keys = new List<(DateTime, string)>();
        for (var hour = 0; hour < 96; hour++)
        {
            foreach (var store in Stores)
            {
                if (random.NextDouble() < density)
                {
                    keys.Add((Origin.AddHours(hour), store));
                }
            }
        }

        return keys;
    }

    private async Task<List<string>> RowsAsync(string sql)
    {
        var text = await fixture.ScalarAsync(sql);
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Replace('\t', '|')).Order(StringComparer.Ordinal)];
    }

    private static ClickHouseColumn[] Columns(IReadOnlyList<(string Name, string Type)> columns) => [.. columns.Select(c => new ClickHouseColumn(c.Name, c.Type))];

    private static long Unix(DateTime t) => (long)(t - DateTime.UnixEpoch).TotalSeconds;
}
