using System.Globalization;
using System.Text;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// The embedded backend: ClickHouse 26.5 running inside this process as chDB (<c>libchdb.so</c>), with its
/// databases under <see cref="ChDbOptions.DataPath"/>.
/// </summary>
/// <remarks>
/// <para>What chDB allows, as measured with chDB 26.5.3 on 2 cores (see README.md):</para>
/// <list type="bullet">
/// <item>One data path per process at a time. Connecting with a second path while any connection is open fails;
/// after every connection is closed another path can be opened. Opening a second path here throws
/// <see cref="ClickHouseException"/>; instances on the same path share one engine (reference counted).</item>
/// <item>Many connections on that path. One connection runs one statement at a time (chDB serializes them
/// internally: four CPU-bound queries on one connection took 4.5x one query's time), while statements on
/// different connections run in parallel. So each concurrent call takes its own connection from a shared pool,
/// at most <see cref="ChDbOptions.MaxConcurrentQueries"/> per instance; further calls wait.</item>
/// <item>Session state (<c>SET</c>, <c>USE</c>, temporary tables) lives on one connection and is not carried
/// between calls: qualify table names and pass settings in the statement's <c>SETTINGS</c> clause.</item>
/// <item>A running statement cannot be interrupted: cancellation is honoured only until the statement starts.</item>
/// </list>
/// <para>
/// Loading chDB replaces the process's handlers of fatal signals (and SIGTSTP, SIGSYS, SIGRTMIN), which would turn
/// the next <see cref="NullReferenceException"/> into a crash; <see cref="ChDbSignals"/> puts the runtime's back after
/// every <c>chdb_connect</c>/<c>chdb_close_conn</c> and checks them after every query. All connections are closed when the last instance is disposed, and at process exit.
/// </para>
/// <para>Thread-safe. Dispose waits for this instance's running statements.</para>
/// </remarks>
public sealed class ChDbClickHouse : IClickHouse
{
    private const string InsertFolderName = "lambda_insert_tmp";
    private readonly ChDbNative native;
    private readonly ChDbEngine engine;
    private readonly SemaphoreSlim slots;
    private readonly int maxConcurrentQueries;
    private int disposed;

    private ChDbClickHouse(ChDbNative native, ChDbEngine engine, int maxConcurrentQueries)
    {
        this.native = native;
        this.engine = engine;
        this.maxConcurrentQueries = maxConcurrentQueries;
        slots = new SemaphoreSlim(maxConcurrentQueries, maxConcurrentQueries);
    }

    /// <inheritdoc />
    public string BackendName => "chdb";

    /// <summary>Full path of the data folder.</summary>
    public string DataPath => engine.DataPath;

    /// <summary>Full path of the loaded <c>libchdb.so</c>.</summary>
    public string LibraryPath => native.LibraryPath;

    /// <summary>chDB connections the process holds on <see cref="DataPath"/> (grows with concurrency; for diagnostics).</summary>
    public int OpenConnections => engine.ConnectionCount;

    /// <summary>
    /// Loads chDB (once per process) and opens <see cref="ChDbOptions.DataPath"/>, creating the folder when missing.
    /// </summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="ClickHouseException">The library is missing (the message says where it looked), another data
    /// path is open in this process, or chDB refused to start.</exception>
    public static async Task<ChDbClickHouse> CreateAsync(ChDbOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return await Task.Run(() => Open(options), cancellationToken);
    }

    /// <summary>Synchronous form of <see cref="CreateAsync"/> (starting chDB takes a few hundred milliseconds).</summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="ClickHouseException">See <see cref="CreateAsync"/>.</exception>
    public static ChDbClickHouse Open(ChDbOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var native = ChDbNative.Load(options);
        var dataPath = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataPath));
        Directory.CreateDirectory(dataPath);
        var engine = ChDbEngine.Acquire(native, dataPath);
        return new ChDbClickHouse(native, engine, options.MaxConcurrentQueries);
    }

    /// <inheritdoc />
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sql);
        using var result = await RunAsync(sql, "TabSeparated", cancellationToken);
    }

    /// <inheritdoc />
    public async Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sql);
        ClickHouseErrors.ValidateFormat(format);
        var result = await RunAsync(sql, format, cancellationToken);
        var (data, length) = native.Buffer(result);
        if (length == 0)
        {
            result.Dispose();
            return new MemoryStream([], writable: false);
        }

        return new ChDbResultStream(result, data, length);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The rows are encoded as RowBinary into a temporary file under the data folder and loaded with one
    /// <c>INSERT ... SELECT FROM file(...)</c>. (Data inline in the statement text is unsafe with chDB: it ends at
    /// the first empty line, so binary data is silently cut short and the rest is run as SQL.)
    /// </remarks>
    public async Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        ArgumentNullException.ThrowIfNull(rows);
        var resolved = RowBinary.Resolve(columns);
        return await InsertFileAsync(table, resolved, (writer, ct) => WriteRows(writer, resolved, rows, ct), cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>Loaded like the boxed rows: encoded into a temporary RowBinary file, then one <c>INSERT ... SELECT FROM file(...)</c>.</remarks>
    public async Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(write);
        var resolved = RowBinary.Resolve(columns);
        return await InsertFileAsync(table, resolved, (writer, ct) => WriteRows(writer, rows, write, ct), cancellationToken);
    }

    /// <summary>Waits for this instance's running statements, then releases its share of the engine.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        for (var i = 0; i < maxConcurrentQueries; i++)
        {
            await slots.WaitAsync();
        }

        engine.Release();

        // Calls that were already waiting get a slot, see the disposal and throw ObjectDisposedException.
        slots.Release(maxConcurrentQueries);
    }

    /// <summary>Encodes rows with <paramref name="encode"/> into a temporary RowBinary file and loads it into <paramref name="table"/>.</summary>
    private async Task<long> InsertFileAsync(string table, RowBinaryColumn[] columns, Func<RowBinaryWriter, CancellationToken, long> encode, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var folder = Path.Combine(engine.DataPath, InsertFolderName);
        Directory.CreateDirectory(folder);
        var file = Path.Combine(folder, Guid.NewGuid().ToString("N") + ".rowbinary");
        try
        {
            var count = await Task.Run(() => WriteFile(file, columns, encode, cancellationToken), cancellationToken);
            if (count == 0)
            {
                return 0;
            }

            var names = string.Join(", ", columns.Select(c => ClickHouseErrors.QuoteIdentifier(c.Name)));
            var structure = string.Join(", ", columns.Select(c => ClickHouseErrors.QuoteIdentifier(c.Name) + " " + c.Type));
            var sql = $"INSERT INTO {table} ({names}) SELECT * FROM file({ClickHouseErrors.QuoteString(file)}, 'RowBinary', {ClickHouseErrors.QuoteString(structure)})";
            using var result = await RunAsync(sql, "TabSeparated", cancellationToken);
            return count;
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static long WriteFile(string file, RowBinaryColumn[] columns, Func<RowBinaryWriter, CancellationToken, long> encode, CancellationToken cancellationToken)
    {
        using var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.SequentialScan);
        var writer = new RowBinaryWriter(stream, columns);
        try
        {
            var count = encode(writer, cancellationToken);
            writer.Flush();
            return count;
        }
        finally
        {
            writer.Release();
        }
    }

    private static long WriteRows(RowBinaryWriter writer, RowBinaryColumn[] columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken)
    {
        long count = 0;
        foreach (var row in rows)
        {
            if ((count & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            writer.WriteRow(RowBinary.Check(columns, row, count));
            count++;
        }

        return count;
    }

    private static long WriteRows<T>(RowBinaryWriter writer, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken)
    {
        var count = rows.Count;
        for (var i = 0; i < count; i++)
        {
            if ((i & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var row = rows[i];
            write(writer, in row);
            writer.EndRow();
        }

        return count;
    }

    private async Task<ChDbResultHandle> RunAsync(string sql, string format, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await slots.WaitAsync(cancellationToken);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            ThrowIfDisposed();

            // chDB blocks the calling thread for the whole statement; run it on the thread pool.
            return await Task.Run(() => Run(sql, format), CancellationToken.None);
        }
        finally
        {
            slots.Release();
        }
    }

    private ChDbResultHandle Run(string sql, string format)
    {
        var query = Encoding.UTF8.GetBytes(sql);
        var formatBytes = Encoding.ASCII.GetBytes(format);
        var connection = engine.Rent();
        (ChDbResultHandle Result, string? Error) outcome;
        try
        {
            outcome = native.Query(connection, query, formatBytes);
            if (outcome.Error is not null)
            {
                // chDB 26.5 keeps what a failed statement had already produced in the connection's output and hands it
                // to the next statement on that connection: a throwaway statement takes it, so no caller ever gets it.
                native.Query(connection, "SELECT 1"u8, "TabSeparated"u8).Result.Dispose();
            }
        }
        finally
        {
            engine.Return(connection);
        }

        return outcome.Error is { } error
            ? throw ClickHouseErrors.FromServerText(string.Create(CultureInfo.InvariantCulture, $"chDB ({engine.DataPath})"), error, sql)
            : outcome.Result;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
}
