using System.Globalization;
using LambdaPlatform.Batch.Master;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

// Hosts share Hangfire's static configuration (log provider, serializer settings): run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace LambdaPlatform.Jobs.Tests;

/// <summary>
/// One embedded ClickHouse (chDB allows one data path per process) shared by the jobs tests; each test uses its own
/// views (GUID-suffixed names, so their own tables) and its own master-dataset folder.
/// </summary>
public sealed class JobsFixture : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "jobs-tests-" + Guid.NewGuid().ToString("N"));

    public ChDbClickHouse ClickHouse { get; private set; } = null!;

    public IReadOnlyList<ViewDefinition> ShippedViews { get; } = ViewLoader.LoadAll(ViewLoader.DefaultDirectory(), EventSchemaRegistry.LoadDefault());

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        ClickHouse = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = Path.Combine(_root, "chdb") });
        await ClickHouse.ExecuteAsync(ViewSql.CreateWatermarkTable); // so W reads 1970 before any batch ran
    }

    public async Task DisposeAsync()
    {
        await ClickHouse.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>A fresh folder for one test's master dataset and batch views.</summary>
    public string NewDataRoot()
    {
        var path = Path.Combine(_root, "data-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>The shipped <c>checkout_revenue</c> view under a unique name (its own tables).</summary>
    public ViewDefinition NewCheckoutView() =>
        ShippedViews.Single(v => v.Name == "checkout_revenue") with { Name = "checkout_revenue_" + Guid.NewGuid().ToString("N")[..10] };

    /// <summary>Runs one query and returns its single value as text.</summary>
    public async Task<string> ScalarAsync(string sql)
    {
        await using var stream = await ClickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return (await reader.ReadToEndAsync()).Trim();
    }

    /// <summary>The view's W as stored by the batch layer (1970-01-01 before the first batch).</summary>
    public async Task<DateTime> WatermarkAsync(ViewDefinition view) =>
        DateTime.UnixEpoch.AddSeconds(long.Parse(await ScalarAsync($"SELECT toUnixTimestamp({new ViewSql(view).WatermarkExpression})"), CultureInfo.InvariantCulture));

    /// <summary>
    /// Publishes one master-dataset file of <paramref name="count"/> checkout events in (<paramref name="day"/>,
    /// <paramref name="hour"/>), Kafka partition 0 from <paramref name="firstOffset"/>: store <c>s{i % 3}</c>, cart value
    /// <c>i + 1</c>, minute <c>i % 60</c>. Returns the file's path.
    /// </summary>
    public static async Task<string> WriteCheckoutsAsync(string root, DateOnly day, int hour, long firstOffset, int count)
    {
        var dataset = new MasterDataset(root);
        var buffer = new MasterEventBuffer(count);
        for (var i = 0; i < count; i++)
        {
            var payload = string.Create(CultureInfo.InvariantCulture, $$"""{"location":"s{{i % 3}}","cartValue":{{i + 1}},"currency":"EUR","items":1}""");
            buffer.Add(Guid.NewGuid(), "user.action.checkout", day.ToDateTime(new TimeOnly(hour, i % 60), DateTimeKind.Utc), "user-" + (i % 5),
                "web", "1", payload, partition: 0, offset: firstOffset + i);
        }

        var key = new HourKey(day, hour);
        Directory.CreateDirectory(dataset.HourPath(key));
        var path = dataset.FilePath(key, 0, new OffsetRange(firstOffset, firstOffset + count - 1));
        await MasterParquet.WriteFileAsync(buffer, path);
        await dataset.MarkChangedAsync([day]);
        return path;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes (then fails with <paramref name="what"/>).</summary>
    public static Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        EventuallyAsync(condition, () => what, timeout);

    /// <summary>As above; <paramref name="what"/> is computed on failure (e.g. to describe the state reached).</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what()}");
            await Task.Delay(100);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class JobsCollection : ICollectionFixture<JobsFixture>
{
    public const string Name = "jobs";
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class FakeClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Set(DateTimeOffset now) => Interlocked.Exchange(ref _ticks, now.UtcTicks);
}
