using System.Diagnostics.Metrics;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Batch.Tests;

/// <summary>
/// <c>lambda.batch.runs</c> counts runs per view and outcome, and <c>lambda.batch.last_success.timestamp</c> moves only
/// when a run succeeds (what the "batch did not run" alert reads).
/// </summary>
[Collection(ArchiveCollection.Name)]
public sealed class BatchRunMetricsTests : IAsyncLifetime
{
    private static readonly DateTime Now = new(2026, 10, 6, 3, 0, 0, DateTimeKind.Utc);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "batch-metrics-" + Guid.NewGuid().ToString("N"));
    private ChDbClickHouse _clickHouse = null!;

    public async Task InitializeAsync() => _clickHouse = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(_root, "chdb") });

    public async Task DisposeAsync()
    {
        await _clickHouse.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Runs_AreCountedByOutcome_AndTheLastSuccessMovesOnlyOnSuccess()
    {
        var name = "metrics_probe_" + Guid.NewGuid().ToString("N")[..8];
        var view = ViewLoader.Parse($"""
            view: {name}
            events: [user.action.checkout]
            bucket: 1h
            measures:
              orders: count
            """, name + ".yaml", EventSchemaRegistry.LoadDefault());
        using var metrics = new BatchMetrics();
        using var reader = new Reader(name);

        using (var ok = new BatchRecompute(_clickHouse, _clickHouse, [view], new BatchOptions { DataRoot = _root }, new FixedClock(Now), metrics: metrics))
        {
            await ok.RunAsync();
        }

        var failing = new FailingReplace(_clickHouse);
        using (var failed = new BatchRecompute(_clickHouse, failing, [view], new BatchOptions { DataRoot = _root }, new FixedClock(Now.AddHours(1)), metrics: metrics))
        {
            await failed.RunAsync(); // nothing to do: a successful run all the same
            failing.Fail = true;
            await Assert.ThrowsAsync<ClickHouseException>(() => failed.RunAsync(day: DateOnly.FromDateTime(Now.AddDays(-2))));
        }

        reader.Collect();
        Assert.Equal(2, reader.Sum("lambda.batch.runs", "ok"));
        Assert.Equal(1, reader.Sum("lambda.batch.runs", "failed"));
        Assert.Equal((Now.AddHours(1) - DateTime.UnixEpoch).TotalSeconds, reader.Gauge("lambda.batch.last_success.timestamp"));
    }

    /// <summary>A serving ClickHouse whose batch swaps fail once <see cref="Fail"/> is set.</summary>
    private sealed class FailingReplace(IClickHouse inner) : IClickHouse
    {
        public bool Fail { get; set; }

        public string BackendName => inner.BackendName;

        public Task ExecuteAsync(string sql, CancellationToken cancellationToken = default) =>
            Fail && sql.Contains("PARTITION", StringComparison.Ordinal) && sql.StartsWith("ALTER TABLE", StringComparison.Ordinal)
                ? throw new ClickHouseException("injected: the swap fails", 999, sql, isTransient: true)
                : inner.ExecuteAsync(sql, cancellationToken);

        public Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default) => inner.QueryAsync(sql, format, cancellationToken);

        public Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default) =>
            inner.InsertAsync(table, columns, rows, cancellationToken);

        public Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default) =>
            inner.InsertAsync(table, columns, rows, write, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>The batch meter's counter sums and gauge values for one view.</summary>
    private sealed class Reader : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<(string Instrument, string? Outcome), double> _values = [];

        public Reader(string view)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == BatchMetrics.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(view, i, v, tags, sum: true));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(view, i, v, tags, sum: false));
            _listener.Start();
        }

        public void Collect() => _listener.RecordObservableInstruments();

        public double Sum(string instrument, string outcome) => _values.GetValueOrDefault((instrument, outcome));

        public double Gauge(string instrument) => _values[(instrument, null)];

        public void Dispose() => _listener.Dispose();

        private void Add(string view, Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, bool sum)
        {
            string? v = null, outcome = null;
            foreach (var tag in tags)
            {
                v = tag.Key == "view" ? tag.Value as string : v;
                outcome = tag.Key == "outcome" ? tag.Value as string : outcome;
            }

            if (v == view)
            {
                lock (_values)
                {
                    _values[(instrument.Name, outcome)] = (sum ? _values.GetValueOrDefault((instrument.Name, outcome)) : 0) + value;
                }
            }
        }
    }

    private sealed class FixedClock(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }
}
