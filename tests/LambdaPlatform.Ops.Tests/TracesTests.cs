using System.Collections;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Confluent.Kafka;
using LambdaPlatform.Hosting;
using LambdaPlatform.Kafka;
using OpenTelemetry.Trace;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// Traces of a running platform (<c>lambda up</c> on embedded defaults), read back two ways: every span through OpenTelemetry's
/// in-memory exporter, and the OTLP export itself through an in-test OTLP/HTTP receiver (the platform configured with
/// <c>telemetry.otlpEndpoint</c>, as an operator would). One trace goes from an HTTP request down to the ClickHouse statement it
/// ran; records produced with a <c>traceparent</c> header are written by a flush span linked to the producer's trace.
/// </summary>
public sealed class TracesTests(TracesTests.TracedPlatform fixture) : IClassFixture<TracesTests.TracedPlatform>
{
    private readonly SpanCollection _spans = fixture.Spans;
    private readonly OtlpReceiver _receiver = fixture.Receiver;
    private readonly TestPlatform _platform = fixture.Platform;

    /// <summary>One platform for the class: spans to an in-memory exporter and, through OTLP/HTTP, to an in-test receiver.</summary>
    public sealed class TracedPlatform : IAsyncLifetime
    {
        public SpanCollection Spans { get; } = new();

        public OtlpReceiver Receiver { get; } = new();

        public TestPlatform Platform { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Receiver.Start();
            Platform = await TestPlatform.StartAsync(
                telemetry: new TelemetryOptions { OtlpEndpoint = new Uri(Receiver.Url), OtlpProtocol = "http/protobuf", Role = "up" },
                configure: services => services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans)));
        }

        public async Task DisposeAsync()
        {
            await Platform.DisposeAsync();
            Receiver.Dispose();
        }
    }

    [Fact]
    public async Task HttpRequest_IsOneTrace_DownToTheClickHouseStatementItRan()
    {
        var from = DateTime.UtcNow.AddHours(-3).ToString("yyyy-MM-dd'T'HH:00:00'Z'", CultureInfo.InvariantCulture);
        using var response = await _platform.Http.GetAsync($"/v1/views/checkout_revenue?from={from}&store=trace-test");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The statement that filtered on the request's store, and the request's span in its trace (query values are redacted in url.query).
        Activity? server = null;
        Activity? statement = null;
        await TestPlatform.PollAsync(() =>
        {
            var spans = _spans.Snapshot();
            statement = spans.LastOrDefault(a => a.Source.Name == "LambdaPlatform.ClickHouse" && (a.GetTagItem("db.statement") as string ?? string.Empty).Contains("trace-test", StringComparison.Ordinal));
            server = statement is null ? null : spans.FirstOrDefault(a => a.TraceId == statement.TraceId && a.Kind == ActivityKind.Server);
            return Task.FromResult(server is not null);
        }, "the request's span and its ClickHouse statement", TimeSpan.FromSeconds(30));

        // The statement is a client span whose parent chain reaches the request's span, in the request's trace.
        Assert.Equal("/v1/views/{view}", server!.GetTagItem("http.route"));
        Assert.Equal("GET /v1/views/{view}", server.DisplayName);
        Assert.Equal(ActivityKind.Client, statement!.Kind);
        Assert.Equal("clickhouse", statement.GetTagItem("db.system"));
        Assert.Equal("SELECT", statement.GetTagItem("db.operation"));
        Assert.StartsWith("clickhouse SELECT", statement.DisplayName, StringComparison.Ordinal);
        Assert.True(Descends(statement, server!), $"the statement's span {statement.SpanId} (parent {statement.ParentSpanId}) is not under the request's span {server!.SpanId}");
        Assert.True((statement.GetTagItem("db.statement") as string)!.Length <= LambdaPlatform.ClickHouse.TracingClickHouse.MaxStatementLength);

        // The same spans left the process through OTLP (protobuf over HTTP): the request's trace id is in an export.
        var traceId = new byte[16];
        server!.TraceId.CopyTo(traceId);
        await TestPlatform.PollAsync(() => Task.FromResult(_receiver.Contains("/v1/traces", traceId)
            && _receiver.Contains("/v1/traces", Encoding.UTF8.GetBytes("clickhouse SELECT"))), "the OTLP export of the request's trace", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task FlushSpan_IsLinkedToTheProducersTraceparent()
    {
        // A producer's span: its context travels in each record's traceparent header.
        var producerTrace = ActivityTraceId.CreateRandom();
        var producerSpan = ActivitySpanId.CreateRandom();
        var headers = new Headers { { KafkaTracing.TraceParentHeader, Encoding.ASCII.GetBytes($"00-{producerTrace}-{producerSpan}-01") } };
        var now = DateTime.UtcNow;
        _platform.Produce(TestPlatform.Checkouts(20, now.AddSeconds(-30), TimeSpan.FromSeconds(1), seed: 77), headers);

        Activity? flush = null;
        await TestPlatform.PollAsync(() =>
        {
            flush = _spans.Snapshot().FirstOrDefault(a => a.Source.Name == "LambdaPlatform.Speed" && a.DisplayName == "speed.flush"
                && a.Links.Any(l => l.Context.TraceId == producerTrace && l.Context.SpanId == producerSpan));
            return Task.FromResult(flush is not null);
        }, "a speed.flush span linked to the producer's span", TimeSpan.FromSeconds(60));

        // The flush is its own trace (it writes records of many producers), under the batch's span; its inserts are its children.
        Assert.NotEqual(producerTrace, flush!.TraceId);
        Assert.True((long)flush.GetTagItem("messaging.batch.message_count")! >= 1);
        var all = _spans.Snapshot();
        Assert.Contains(all, a => a.ParentSpanId == flush.SpanId && a.Source.Name == "LambdaPlatform.ClickHouse" && a.GetTagItem("db.operation") as string == "INSERT");
        var parent = all.Single(a => a.SpanId == flush.ParentSpanId);
        Assert.Equal("speed.batch", parent.DisplayName);
        Assert.Contains(all, a => a.ParentSpanId == parent.SpanId && a.DisplayName == "speed.consume");
        Assert.Contains(all, a => a.ParentSpanId == parent.SpanId && a.DisplayName == "speed.commit");
    }

    [Fact]
    public async Task BatchRun_IsOneTrace_WithADaySpanAndItsSteps()
    {
        var day = DateOnly.FromDateTime(DateTime.UtcNow.AddDays(-2));
        _platform.Produce(TestPlatform.Checkouts(50, day.ToDateTime(new TimeOnly(9, 0), DateTimeKind.Utc), TimeSpan.FromMinutes(3), seed: 91));
        // The archiver publishes within its max file age; until then the day has no master files and loads nothing.
        await TestPlatform.PollAsync(async () => (await _platform.BatchRunAsync(new { view = "checkout_revenue", day = TestPlatform.Day(day) }))
            .Any(r => r.GetProperty("rowsOut").GetInt64() > 0), "a batch run that loads the day");

        var dayAt = _spans.Snapshot().Last(a => a.DisplayName == "batch.day" && a.GetTagItem("lambda.day") as string == TestPlatform.Day(day)
            && a.GetTagItem("lambda.batch.rows_out") is long rows && rows > 0);
        var all = _spans.Snapshot().Where(a => a.TraceId == dayAt.TraceId).ToList();
        Assert.Contains(all, a => a.DisplayName == "batch.run" && a.SpanId == dayAt.ParentSpanId);
        foreach (var step in new[] { "batch.compute", "batch.load", "batch.swap" })
        {
            Assert.Contains(all, a => a.DisplayName == step && a.ParentSpanId == dayAt.SpanId);
        }

        // Its ClickHouse statements are in the same trace (the swap's REPLACE PARTITION among them), and the run sits under the HTTP request.
        Assert.Contains(all, a => a.Source.Name == "LambdaPlatform.ClickHouse" && (a.GetTagItem("db.statement") as string ?? string.Empty).Contains("REPLACE PARTITION", StringComparison.Ordinal));
        Assert.Contains(all, a => a.Kind == ActivityKind.Server && a.GetTagItem("http.route") as string == "/v1/batch/run");
    }

    private bool Descends(Activity span, Activity ancestor)
    {
        var byId = _spans.Snapshot().GroupBy(a => a.SpanId).ToDictionary(g => g.Key, g => g.First());
        var current = span;
        for (var depth = 0; depth < 32 && current is not null; depth++)
        {
            if (current.ParentSpanId == ancestor.SpanId)
            {
                return true;
            }

            current = byId.GetValueOrDefault(current.ParentSpanId);
        }

        return false;
    }

    /// <summary>The in-memory exporter's target: ended spans, added from any thread.</summary>
    public sealed class SpanCollection : ICollection<Activity>
    {
        private readonly List<Activity> _items = [];
        private readonly Lock _lock = new();

        public int Count
        {
            get
            {
                lock (_lock)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public List<Activity> Snapshot()
        {
            lock (_lock)
            {
                return [.. _items];
            }
        }

        public void Add(Activity item)
        {
            lock (_lock)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_lock)
            {
                _items.Clear();
            }
        }

        public bool Contains(Activity item) => Snapshot().Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

        public bool Remove(Activity item)
        {
            lock (_lock)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => Snapshot().GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
