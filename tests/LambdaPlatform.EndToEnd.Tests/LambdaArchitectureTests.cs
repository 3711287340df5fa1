using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Sketches;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>
/// The whole platform (`lambda up` composition) end to end: generated events with duplicates, late events
/// and invalid lines go through Kafka; before the batch, today's answer matches the exact one within the
/// speed layer's stated error; after the batch run, every bucket below W equals the exact answer and the
/// rest still comes from real time; the ClickHouse view and the API return the same rows.
/// </summary>
public sealed class LambdaArchitectureTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);

    // The platform lives 30 days in the past (its clock is shifted), so "today" and the closed days are
    // stable whatever the wall-clock time of the run.
    private readonly ShiftedClock _clock = new(TimeSpan.FromDays(30));
    private readonly string _data = Path.Combine(Path.GetTempPath(), "lambda-e2e-" + Guid.NewGuid().ToString("N"));
    private PlatformHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _host = await PlatformHost.StartAsync(new UpOptions { DataDirectory = _data, Http = "127.0.0.1:" + Probe.FreePort(), Partitions = 4, Clock = _clock });
        _http = new HttpClient { BaseAddress = new Uri(_host.Endpoints.Http) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task MergedAnswer_IsExactBelowW_AndRealtimeAboveIt()
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        var today = now.Date;
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = 21, Users = 2_000 });
        var random = new Random(22);
        var valid = new List<GeneratedEvent>();
        var lines = new List<byte[]>();
        void Emit(GeneratedEvent e)
        {
            valid.Add(e);
            lines.Add(e.Json);
            if (random.Next(40) == 0)
            {
                valid.Add(e); // a duplicate: same eventId, delivered twice
                lines.Add(e.Json);
            }

            if (random.Next(200) == 0)
            {
                lines.Add(Encoding.UTF8.GetBytes("{\"eventId\": \"broken")); // an invalid line
            }
        }

        // Two closed days and today, in time order; then stragglers for a closed day (late for the speed layer).
        foreach (var day in new[] { today.AddDays(-3), today.AddDays(-2) })
        {
            for (var i = 0; i < 4_000; i++)
            {
                Emit(generator.Next(day.AddHours(10).AddSeconds(i * 1.8)));
            }
        }

        var todayStart = now.AddHours(-2) < today ? today : now.AddHours(-2);
        for (var i = 0; i < 5_000; i++)
        {
            Emit(generator.Next(todayStart + ((now.AddMinutes(-1) - todayStart) * i / 5_000)));
        }

        var late = new List<GeneratedEvent>();
        for (var i = 0; i < 200; i++)
        {
            var e = generator.Next(today.AddDays(-2).AddHours(11).AddSeconds(i * 7));
            late.Add(e);
            Emit(e);
        }

        using (var producer = new EventProducer(_host.Endpoints.Kafka))
        {
            foreach (var line in lines)
            {
                producer.Send(line);
            }

            producer.Flush();
            Assert.Equal(lines.Count, producer.Delivered);
        }

        var distinct = valid.DistinctBy(e => e.EventId).ToList();
        var clickHouse = _host.App.Services.GetRequiredService<IClickHouse>();

        // The speed layer has counted every distinct event, the stragglers for a closed day too (no batch has run, so
        // every bucket is at or above W); the archiver has every valid record.
        await Probe.PollAsync(async () => await Probe.ScalarAsync(clickHouse, "SELECT sum(events) FROM activity_by_type") == distinct.Count, Deadline);
        await Probe.PollAsync(async () => await ArchivedAsync(clickHouse) == valid.Count, Deadline);

        // Before the batch: today's answer equals the exact one (counts and sums), within error (distinct, p99).
        var truth = CheckoutTruth(distinct);
        var before = await ApiRowsAsync(today, today.AddDays(1));
        Assert.NotEmpty(before);
        foreach (var row in before)
        {
            Assert.Equal("realtime", row.Side);
            AssertRow(truth[(row.Bucket, row.Store)], row, exact: false);
        }

        Assert.Equal(truth.Keys.Count(k => k.Bucket >= today), before.Count);

        // The batch run: closed days recomputed exactly, W moves past them.
        var results = await _host.App.Services.GetRequiredService<BatchRecompute>().RunAsync();
        Assert.Contains(results, r => r.View == "checkout_revenue" && r.Day == DateOnly.FromDateTime(today.AddDays(-2)));
        var answer = JsonDocument.Parse(await _http.GetStringAsync($"/v1/views/checkout_revenue?from={Probe.Iso(today.AddDays(-3))}&to={Probe.Iso(today.AddDays(1))}")).RootElement;
        Assert.True(answer.GetProperty("watermark").ValueKind == JsonValueKind.String, "no watermark after the batch run: " + string.Join("; ", results));
        var watermark = DateTime.Parse(answer.GetProperty("watermark").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
        Assert.Equal(today.AddDays(-1), watermark);

        var after = await ApiRowsAsync(today.AddDays(-3), today.AddDays(1));
        Assert.Equal(truth.Count, after.Count); // no bucket missing, none twice
        foreach (var row in after)
        {
            Assert.Equal(row.Bucket < watermark ? "batch" : "realtime", row.Side);
            AssertRow(truth[(row.Bucket, row.Store)], row, exact: row.Bucket < watermark);
        }

        // Analysts' SQL sees the same rows as the API.
        var sql = await Probe.QueryAsync(clickHouse, $"SELECT toUnixTimestamp(bucket), store, orders, revenue, buyers, p99_cart, side FROM checkout_revenue WHERE bucket >= toDateTime({Unix(today.AddDays(-3))}, 'UTC') AND bucket < toDateTime({Unix(today.AddDays(1))}, 'UTC') ORDER BY bucket, store");
        Assert.Equal(after.Count, sql.Count);
        for (var i = 0; i < sql.Count; i++)
        {
            Assert.Equal(DateTime.UnixEpoch.AddSeconds(long.Parse(sql[i][0], CultureInfo.InvariantCulture)), after[i].Bucket);
            Assert.Equal(sql[i][1], after[i].Store);
            Assert.Equal(long.Parse(sql[i][2], CultureInfo.InvariantCulture), after[i].Orders);
            Assert.Equal(double.Parse(sql[i][3], CultureInfo.InvariantCulture), after[i].Revenue, 9);
            Assert.Equal(sql[i][6], after[i].Side);
        }
    }

    private static void AssertRow((long Orders, decimal Revenue, int Buyers, double P99) truth, ApiRow row, bool exact)
    {
        Assert.Equal(truth.Orders, row.Orders);
        Assert.Equal((double)truth.Revenue, row.Revenue, 6);
        if (exact)
        {
            Assert.Equal(truth.Buyers, row.Buyers);
            Assert.Equal(truth.P99, row.P99, 9);
        }
        else
        {
            Assert.True(Math.Abs(row.Buyers - truth.Buyers) <= (4 * HyperLogLog.StandardError * truth.Buyers) + 1, $"buyers {row.Buyers} vs {truth.Buyers}");
            Assert.True(Math.Abs(row.P99 - truth.P99) <= DDSketch.RelativeAccuracy * truth.P99 + 1e-9, $"p99 {row.P99} vs {truth.P99}");
        }
    }

    private static Dictionary<(DateTime Bucket, string Store), (long Orders, decimal Revenue, int Buyers, double P99)> CheckoutTruth(List<GeneratedEvent> distinct) =>
        distinct.Where(e => e.EventType == "user.action.checkout")
            .Select(e => (Event: e, Payload: JsonDocument.Parse(e.Json).RootElement.GetProperty("payload").Clone()))
            .GroupBy(c => (new DateTime(c.Event.Timestamp.Ticks - (c.Event.Timestamp.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc), c.Payload.GetProperty("location").GetString()!))
            .ToDictionary(g => g.Key, g => (
                (long)g.Count(),
                g.Sum(c => c.Payload.GetProperty("cartValue").GetDecimal()),
                g.Select(c => c.Event.UserId).Distinct().Count(),
                g.Select(c => c.Payload.GetProperty("cartValue").GetDouble()).Order().ElementAt((int)Math.Ceiling(0.99m * g.Count()) - 1)));

    private sealed record ApiRow(DateTime Bucket, string Store, long Orders, double Revenue, long Buyers, double P99, string Side);

    private async Task<List<ApiRow>> ApiRowsAsync(DateTime from, DateTime to)
    {
        var body = JsonDocument.Parse(await _http.GetStringAsync($"/v1/views/checkout_revenue?from={Probe.Iso(from)}&to={Probe.Iso(to)}")).RootElement;
        return [.. body.GetProperty("rows").EnumerateArray().Select(r => new ApiRow(
            DateTime.Parse(r.GetProperty("bucket").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal),
            r.GetProperty("store").GetString()!,
            r.GetProperty("orders").GetInt64(),
            r.GetProperty("revenue").GetDouble(),
            r.GetProperty("buyers").GetInt64(),
            r.GetProperty("p99_cart").GetDouble(),
            r.GetProperty("side").GetString()!))];
    }

    /// <summary>Rows in the master dataset's Parquet files (0 before the first file).</summary>
    private async Task<long> ArchivedAsync(IClickHouse clickHouse)
    {
        try
        {
            return await Probe.ScalarAsync(clickHouse, $"SELECT count() FROM file('{_data}/master/events/*/*/*.parquet', Parquet)");
        }
        catch (ClickHouseException e) when (e.ErrorCode == 636)
        {
            return 0;
        }
    }



    private static long Unix(DateTime t) => (long)(t - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>The system clock moved back by a fixed offset; elapsed-time measurements are unchanged.</summary>
    private sealed class ShiftedClock(TimeSpan back) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() - back;
    }
}
