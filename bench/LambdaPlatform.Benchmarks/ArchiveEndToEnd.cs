using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Confluent.Kafka;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Dev.Kafka;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaPlatform.Benchmarks;

/// <summary>
/// <c>archive.events_per_s</c>: a real <see cref="Archiver"/> (the shipped options: 200,000-event files, Zstd, fsync and
/// rename per file, offsets committed after) over the run's topic, from start until the files holding every event
/// are published and their offsets committed. The archiver publishes a partition when its buffer is full, when its
/// oldest record waited <see cref="ArchiverOptions.MaxFileAge"/> (15 s) or at shutdown; the topic fits in memory, so
/// the harness stops it as soon as it has read every record (its <c>lambda.archive.events_in</c> counter) and the
/// graceful stop publishes, fsyncs, renames and commits everything. The clock stops when <c>StopAsync</c> returns; then
/// the harness checks the archiver's <see cref="Archiver.EventsArchived"/>, the rows in the published files and the
/// group's committed offsets (untimed).
/// </summary>
internal sealed class ArchiveEndToEnd(IClickHouse clickHouse, EventSchemaRegistry schemas, DevBroker broker)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    public async Task<TimeSpan> RunAsync(BenchTopic topic)
    {
        var root = Path.Combine(Path.GetTempPath(), "lambdaplatform-bench-archive-" + Guid.NewGuid().ToString("N"));
        var group = "archive-bench-" + Guid.NewGuid().ToString("N")[..12];
        long read = 0;
        using var metrics = new ArchiverMetrics();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ArchiverMetrics.MeterName && instrument.Name == "lambda.archive.events_in")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref read, value));
        listener.Start();
        try
        {
            var options = new ArchiverOptions { BootstrapServers = broker.BootstrapServers, Topic = topic.Name, GroupId = group, RootPath = root };
            using var archiver = new Archiver(options, schemas, metrics, NullLogger<Archiver>.Instance);
            var stopwatch = Stopwatch.StartNew();
            await archiver.StartAsync(CancellationToken.None);
            await Harness.PollAsync(() => Task.FromResult(Interlocked.Read(ref read) >= topic.Count || archiver.EventsArchived >= topic.Count), Deadline,
                () => $"the archiver reading {topic.Count:N0} records (read {Interlocked.Read(ref read):N0})");
            var allRead = stopwatch.Elapsed;
            await archiver.StopAsync(CancellationToken.None);
            var elapsed = stopwatch.Elapsed;
            Harness.Log($"archive: every record read after {allRead.TotalSeconds:0.000} s, published and committed after {elapsed.TotalSeconds:0.000} s ({archiver.FilesPublished} files)");

            await CheckAsync(topic, archiver, root, group);
            return elapsed;
        }
        finally
        {
            Harness.DeleteFolder(root);
        }
    }

    /// <summary>Every event is in a published file exactly once, and the group committed the end of every partition.</summary>
    private async Task CheckAsync(BenchTopic topic, Archiver archiver, string root, string group)
    {
        if (archiver.EventsArchived != topic.Count)
        {
            throw new InvalidOperationException($"the archiver archived {archiver.EventsArchived:N0} events of {topic.Count:N0}");
        }

        var files = archiver.Dataset.ListFiles();
        var glob = Path.Combine(archiver.Dataset.EventsPath, "*", "*", "*.parquet");
        await using var stream = await clickHouse.QueryAsync($"SELECT count(), uniqExact(kafkaPartition, kafkaOffset) FROM file({ViewSql.Literal(glob)}, Parquet)", "TabSeparated");
        using var reader = new StreamReader(stream);
        var counts = (await reader.ReadToEndAsync()).Trim().Split('\t').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (counts[0] != topic.Count || counts[1] != topic.Count)
        {
            throw new InvalidOperationException($"the published files ({files.Count}) hold {counts[0]:N0} rows ({counts[1]:N0} distinct offsets) for {topic.Count:N0} events under {root}");
        }

        using var consumer = new ConsumerBuilder<Ignore, Ignore>(KafkaDefaults.ConsumerConfig(broker.BootstrapServers, group)).Build();
        var committed = consumer.Committed(Enumerable.Range(0, topic.Partitions).Select(p => new TopicPartition(topic.Name, p)), TimeSpan.FromSeconds(10));
        long total = 0;
        foreach (var c in committed)
        {
            total += Math.Max(0, c.Offset.Value);
        }

        if (total != topic.Count)
        {
            throw new InvalidOperationException($"the archive group committed offsets summing to {total:N0}, not {topic.Count:N0}");
        }

        Harness.Log($"archive: {files.Count} files hold all {topic.Count:N0} events; offsets committed");
    }
}
