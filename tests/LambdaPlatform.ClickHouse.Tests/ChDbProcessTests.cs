using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>What chDB allows inside one process, and how the backend lives with it.</summary>
[Collection(ChDbGroup.Name)]
public sealed class ChDbProcessTests(ChDbFixture fixture)
{
    private static readonly TimeSpan Sleep = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task NullReferenceException_IsCaughtAsUsual_WhenThrownAfterChDbOpenedConnections()
    {
        // Two statements at once make the pool open another connection, i.e. call chdb_connect again.
        await using var backend = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = fixture.DataPath, MaxConcurrentQueries = 3 });
        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => backend.ExecuteAsync("SELECT sleep(0.2)")));

        Assert.Throws<NullReferenceException>(() => LengthOf(null));
        var onOtherThread = await Task.Run(() => Record.Exception(() => LengthOf(null)));
        GC.Collect();
        GC.WaitForPendingFinalizers();

        Assert.IsType<NullReferenceException>(onOtherThread);
        Assert.Equal("1", await Tsv.ScalarAsync(backend, "SELECT 1"));
    }

    [Fact]
    public async Task SignalHandlers_StayTheRuntimes_WhenChDbConnectedQueriedAndOpenedPooledConnections()
    {
        await using var backend = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = fixture.DataPath, MaxConcurrentQueries = 3 });
        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => backend.ExecuteAsync("SELECT sleep(0.2)")));
        var table = "signals_" + Guid.NewGuid().ToString("N");
        await backend.ExecuteAsync($"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree() ORDER BY k");
        await backend.InsertAsync(table, [new("k", "UInt64")], [[1UL]]);

        var library = Path.GetFileName(backend.LibraryPath);
        var taken = Enumerable.Range(1, 64)
            .Select(signal => (signal, handler: NativeSignals.Handler(signal)))
            .Where(s => s.handler is { } handler && NativeSignals.Owner(handler) == library)
            .Select(s => s.signal)
            .ToList();

        Assert.True(taken.Count == 0, $"signals still handled by {library}: {string.Join(", ", taken)}");
    }

    [Fact]
    public async Task Query_RunsOneStatementAtATime_WhenStatementsShareOneChDbConnection()
    {
        var native = ChDbNative.Load(new ChDbOptions { DataPath = fixture.DataPath });
        var engine = ChDbEngine.Acquire(native, fixture.Backend.DataPath);
        var connection = engine.Rent();
        try
        {
            var stopwatch = Stopwatch.StartNew();
            var errors = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            {
                var (result, error) = native.Query(connection, "SELECT sleep(1)"u8, "TabSeparated"u8);
                result.Dispose();
                return error;
            })));
            stopwatch.Stop();

            Assert.All(errors, Assert.Null);
            Assert.True(stopwatch.Elapsed >= 1.9 * Sleep, $"two 1 s statements on one connection took {stopwatch.Elapsed}");
        }
        finally
        {
            engine.Return(connection);
            engine.Release();
        }
    }

    [Fact]
    public async Task QueryAsync_RunsStatementsInParallel_WhenCalledConcurrently()
    {
        // While a 3 s statement runs, another call must see it in system.processes; were calls serialized,
        // the probe would only run after it ended. (The probe's text does not contain the marker itself.)
        var marker = "marker" + Guid.NewGuid().ToString("N");
        var slow = fixture.Backend.ExecuteAsync($"SELECT sleep(3), '{marker}'");
        var probe = $"SELECT count() FROM system.processes WHERE query LIKE concat('%', 'marker', '{marker[6..]}', '%')";
        var seen = false;
        while (!seen && !slow.IsCompleted)
        {
            seen = await Tsv.ScalarAsync(fixture.Backend, probe) == "1";
        }

        await slow;
        Assert.True(seen, "a second statement ran only after the first one ended");
        Assert.True(fixture.Backend.OpenConnections >= 2);
    }

    [Fact]
    public async Task QueryAsync_ReturnsEachCallersOwnResult_WhenManyCallsRunAtOnce()
    {
        var formats = new[] { "TabSeparated", "CSV", "JSONEachRow" };

        var results = await Task.WhenAll(Enumerable.Range(0, 300).Select(async i =>
        {
            var format = formats[i % formats.Length];
            await using var stream = await fixture.Backend.QueryAsync($"SELECT toUInt32({i}) + 1 AS v", format);
            using var reader = new StreamReader(stream);
            return (i, format, text: (await reader.ReadToEndAsync()).Trim());
        }));

        foreach (var (i, format, text) in results)
        {
            var value = (i + 1).ToString(CultureInfo.InvariantCulture);
            Assert.Equal(format == "JSONEachRow" ? $"{{\"v\":{value}}}" : value, text);
        }
    }

    [Fact]
    public async Task CreateAsync_ThrowsNamingTheOpenPath_WhenAnotherDataPathIsOpen()
    {
        var other = Path.Combine(Path.GetTempPath(), "lambda-chdb-other-" + Guid.NewGuid().ToString("N"));
        try
        {
            var error = await Assert.ThrowsAsync<ClickHouseException>(() => ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = other }));

            Assert.Contains($"already open on data path '{fixture.Backend.DataPath}'", error.Message, StringComparison.Ordinal);
            Assert.Equal("1", await Tsv.ScalarAsync(fixture.Backend, "SELECT 1"));
        }
        finally
        {
            if (Directory.Exists(other))
            {
                Directory.Delete(other, recursive: true);
            }
        }
    }

    [Fact]
    public async Task DisposeAsync_KeepsTheSharedEngineOpen_WhenAnotherInstanceUsesTheSameDataPath()
    {
        var table = "shared_" + Guid.NewGuid().ToString("N");
        var second = await ChDbClickHouse.CreateAsync(new ChDbOptions { DataPath = fixture.DataPath + Path.DirectorySeparatorChar });
        await second.ExecuteAsync($"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree() ORDER BY k");
        await second.InsertAsync(table, [new("k", "UInt64")], [[7UL]]);

        await second.DisposeAsync();

        Assert.Equal(fixture.Backend.DataPath, second.DataPath);
        Assert.Equal("7", await Tsv.ScalarAsync(fixture.Backend, $"SELECT sum(k) FROM {table}"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => second.ExecuteAsync("SELECT 1"));
    }

    [Fact]
    public async Task InsertAsync_LeavesNoTemporaryFile_WhenTheInsertFails()
    {
        var table = "missing_" + Guid.NewGuid().ToString("N");

        await Assert.ThrowsAsync<ClickHouseException>(() => fixture.Backend.InsertAsync(table, [new("k", "UInt64")], [[1UL]]));

        var folder = Path.Combine(fixture.Backend.DataPath, "lambda_insert_tmp");
        Assert.Empty(Directory.Exists(folder) ? Directory.GetFiles(folder) : []);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int LengthOf(string? text) => text!.Length;
}
