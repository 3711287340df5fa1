using System.Globalization;
using System.Net;
using Confluent.Kafka;
using LambdaPlatform.Chaos.Infrastructure;
using LambdaPlatform.Chaos.Verification;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;

namespace LambdaPlatform.Chaos.Scenarios;

/// <summary>What an operator would look at during an outage: committed offsets, <c>/health</c>, <c>/metrics</c>, a process's memory.</summary>
internal static class OutageProbes
{
    /// <summary>Generous deadline for anything that must happen "eventually".</summary>
    public static readonly TimeSpan Eventually = TimeSpan.FromSeconds(120);

    /// <summary>Polls <paramref name="condition"/> every 250 ms until true; throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: not within {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>GET <paramref name="url"/>: status code and body, or (0, error) when nothing answers.</summary>
    public static async Task<(int Status, string Body)> GetAsync(HttpClient http, string url, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(url), cancellationToken);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
        }
        catch (HttpRequestException e)
        {
            return (0, e.Message);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            return (0, "timeout: " + e.Message);
        }
    }

    /// <summary>Sum of every sample of a Prometheus metric family (all label sets), or 0 when absent.</summary>
    public static double MetricSum(string prometheusText, string name)
    {
        double sum = 0;
        foreach (var line in prometheusText.Split('\n'))
        {
            if (line.StartsWith('#') || !line.StartsWith(name, StringComparison.Ordinal))
            {
                continue;
            }

            var rest = line[name.Length..];
            if (rest.StartsWith('{'))
            {
                rest = rest[(rest.IndexOf('}', StringComparison.Ordinal) + 1)..];
            }
            else if (!rest.StartsWith(' '))
            {
                continue; // another family sharing the prefix
            }

            // "name{labels} value [timestamp]"
            var value = rest.Trim().Split(' ')[0];
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                sum += v;
            }
        }

        return sum;
    }

    /// <summary>Resident set size and its peak (VmRSS, VmHWM) of process <paramref name="pid"/> in bytes, from <c>/proc/&lt;pid&gt;/status</c>.</summary>
    public static (long Rss, long Peak) Memory(int pid)
    {
        long rss = 0, peak = 0;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = Kilobytes(line) * 1024;
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    peak = Kilobytes(line) * 1024;
                }
            }
        }
        catch (IOException)
        {
            // The process ended.
        }

        return (rss, peak);

        static long Kilobytes(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Produces <paramref name="events"/> valid events (current timestamps, increasing) evenly over <paramref name="duration"/>,
    /// in slices of 100 ms, then waits until every one is acknowledged.
    /// </summary>
    public static async Task ProduceAsync(ChaosProducer producer, int seed, int events, TimeSpan duration, CancellationToken cancellationToken)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed });
        var slices = Math.Max(1, (int)(duration.TotalMilliseconds / 100));
        var started = DateTime.UtcNow;
        var sent = 0;
        var last = DateTime.MinValue;
        for (var slice = 1; slice <= slices; slice++)
        {
            var until = (int)((long)events * slice / slices);
            for (; sent < until; sent++)
            {
                var now = DateTime.UtcNow;
                now = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);
                last = now > last ? now : last;
                producer.Send(generator.Next(last));
            }

            var next = started + TimeSpan.FromMilliseconds(100 * slice);
            if (next > DateTime.UtcNow)
            {
                await Task.Delay(next - DateTime.UtcNow, cancellationToken);
            }
        }

        await Task.Run(() => producer.Flush(TimeSpan.FromSeconds(60)), cancellationToken);
    }

    /// <summary>A free TCP port on the loopback interface.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// Events being produced in the background; disposing stops and awaits the production, so the producer is never
/// disposed under a running send (librdkafka would touch freed memory).
/// </summary>
internal sealed class Production : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;

    public Production(ChaosProducer producer, int seed, int events, TimeSpan duration, CancellationToken cancellationToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Completion = OutageProbes.ProduceAsync(producer, seed, events, duration, _stop.Token);
    }

    /// <summary>Completes when every event is sent and acknowledged.</summary>
    public Task Completion { get; }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Completion;
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or KafkaException)
        {
            // Stopped early because the scenario failed; its error is what matters.
        }

        _stop.Dispose();
    }
}

/// <summary>Samples a process's resident set size every 200 ms until disposed.</summary>
internal sealed class RssSampler : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _peak;

    public RssSampler(int pid) => _loop = Task.Run(async () =>
    {
        while (!_stop.IsCancellationRequested)
        {
            var (rss, _) = OutageProbes.Memory(pid);
            if (rss > Interlocked.Read(ref _peak))
            {
                Interlocked.Exchange(ref _peak, rss);
            }

            try
            {
                await Task.Delay(200, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    });

    /// <summary>Highest RSS sampled, in bytes.</summary>
    public long Peak => Interlocked.Read(ref _peak);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}

/// <summary>Writes every line to the scenario's log and to a file (kept when the process dies before the log is shown).</summary>
internal sealed class TeeWriter(TextWriter log, string path) : StringWriter(CultureInfo.InvariantCulture)
{
    private readonly Lock _gate = new();

    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            log.WriteLine(value);
            File.AppendAllText(path, $"{DateTime.UtcNow:HH:mm:ss.fff} {value}\n");
        }
    }
}

/// <summary>The committed offsets of a consumer group, read from the broker (the probe never joins the group).</summary>
internal sealed class CommittedOffsets : IDisposable
{
    private readonly IConsumer<byte[], byte[]> _probe;
    private readonly List<TopicPartition> _partitions;

    public CommittedOffsets(string bootstrapServers, string groupId, int partitions, string topic = Topics.Events)
    {
        _partitions = [.. Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p))];
        _probe = new ConsumerBuilder<byte[], byte[]>(KafkaDefaults.ConsumerConfig(bootstrapServers, groupId, GroupProtocol.Classic)).Build();
    }

    /// <summary>Committed offset per partition (-1 when none).</summary>
    public IReadOnlyDictionary<int, long> Read() =>
        _probe.Committed(_partitions, TimeSpan.FromSeconds(10)).ToDictionary(c => c.Partition.Value, c => c.Offset.Value < 0 ? -1 : c.Offset.Value);

    /// <summary>Records committed over all partitions.</summary>
    public static long Total(IReadOnlyDictionary<int, long> offsets) => offsets.Values.Sum(o => Math.Max(0, o));

    /// <summary>Records on the topic (sum of high watermarks).</summary>
    public long HighWatermarks() => _partitions.Sum(tp => _probe.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High.Value);

    public void Dispose()
    {
        _probe.Close();
        _probe.Dispose();
    }
}

/// <summary>Result figures shared by the outage scenarios.</summary>
internal static class OutageResult
{
    /// <summary>The fault's row from the merged-view comparison; <paramref name="injected"/> is what the platform measured of the fault (failed writes).</summary>
    public static FaultResult From(string fault, long injected, ExpectedViews expected, ViewComparison comparison, List<string> notes, List<string> violations) =>
        new(fault, (int)Math.Min(int.MaxValue, injected), expected.Events, comparison.EventsInView, comparison.Lost, comparison.Duplicated)
        {
            Notes = [.. notes, .. comparison.Mismatches.Select(m => "mismatch: " + m)],
            Error = violations.Count == 0 ? null : string.Join("; ", violations),
            CellsCompared = comparison.CellsCompared,
            CellsWrong = comparison.CellsWrong,
        };
}
