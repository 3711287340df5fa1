using System.Globalization;
using ClickHouse.Driver;
using ClickHouse.Driver.ADO;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// The server backend: a ClickHouse server over HTTP through ClickHouse.Driver, restricted to what works from
/// ClickHouse 18.16 up to current versions: raw results in the requested text format (no typed readers, which
/// need RowBinaryWithNamesAndTypes), no server-side query parameters, no request compression, and bulk inserts
/// as RowBinary with explicit column types (no schema probe).
/// </summary>
/// <remarks>Thread-safe; one instance per server is enough (it pools HTTP connections). Creating it does no I/O.</remarks>
public sealed class ServerClickHouse : IClickHouse
{
    private readonly ClickHouseClient client;
    private readonly HttpClient http;
    private int disposed;

    /// <summary>Creates the backend; nothing is sent until the first call (see <see cref="PingAsync"/>).</summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    public ServerClickHouse(ClickHouseServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        http = new HttpClient(new ReadonlyUserHandler { InnerHandler = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) } })
        {
            Timeout = options.Timeout,
        };
        client = new ClickHouseClient(new ClickHouseClientSettings
        {
            HttpClient = http,
            Host = options.Host,
            Port = checked((ushort)options.Port),
            Protocol = options.UseTls ? "https" : "http",
            Username = options.User,
            Password = options.Password,
            Database = options.Database,
            Timeout = options.Timeout,
            UseCompression = false,
            JsonReadMode = JsonReadMode.None,
            JsonWriteMode = JsonWriteMode.None,
        });
    }

    /// <summary>The options this backend was created with.</summary>
    public ClickHouseServerOptions Options { get; }

    /// <inheritdoc />
    public string BackendName => "server";

    /// <summary>Creates the backend from a connection string (see <see cref="ClickHouseServerOptions.FromConnectionString"/>).</summary>
    /// <exception cref="ArgumentException">The connection string is invalid.</exception>
    public static ServerClickHouse FromConnectionString(string connectionString) =>
        new(ClickHouseServerOptions.FromConnectionString(connectionString));

    /// <summary>Checks that the server answers <c>/ping</c>.</summary>
    /// <exception cref="ClickHouseException">The server is unreachable or unhealthy (transient).</exception>
    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        var ok = await CallAsync(null, ct => client.PingAsync(null, ct), cancellationToken);
        if (!ok)
        {
            throw new ClickHouseException($"ClickHouse server {Options.Endpoint} did not answer /ping with Ok.", null, null, true);
        }
    }

    /// <inheritdoc />
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sql);

        using var raw = await CallAsync(sql, ct => client.ExecuteRawResultAsync(sql, TextQueryOptions(waitEndOfQuery: false), ct), cancellationToken);
    }

    /// <inheritdoc />
    public async Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sql);
        ClickHouseErrors.ValidateFormat(format);

        // A new line first, so that a trailing "-- comment" cannot swallow the clause.
        var text = sql.TrimEnd().TrimEnd(';').TrimEnd() + "\nFORMAT " + format;
        var queryOptions = TextQueryOptions(Options.BufferQueryResults);
        var raw = await CallAsync(sql, ct => client.ExecuteRawResultAsync(text, queryOptions, ct), cancellationToken);
        try
        {
            var body = await raw.ReadAsStreamAsync();
            return new OwningStream(body, raw);
        }
        catch
        {
            raw.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Sent as RowBinary in requests of <see cref="ClickHouseServerOptions.InsertBatchSize"/> rows through the
    /// driver's binary insert, with the column types given here (so the driver does not probe the table).
    /// Rows are checked against the contract before they are sent, exactly as the chDB backend checks them.
    /// </remarks>
    public async Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        ArgumentNullException.ThrowIfNull(rows);
        var resolved = RowBinary.Resolve(columns);
        var names = resolved.Select(c => c.Name).ToArray();
        var insertOptions = new InsertOptions
        {
            ColumnTypes = resolved.ToDictionary(c => c.Name, c => c.Type, StringComparer.Ordinal),
            Compressor = null, // 18.16 rejects zstd/lz4 request bodies
            BatchSize = Options.InsertBatchSize,
            MaxDegreeOfParallelism = 1,
        };
        var query = $"INSERT INTO {table} ({string.Join(", ", names)}) FORMAT RowBinary";
        return await CallAsync(query, ct => client.InsertBinaryAsync(table, names, Checked(resolved, rows), insertOptions, ct), cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Sent as <c>INSERT INTO t (cols) FORMAT RowBinary</c> requests of <see cref="ClickHouseServerOptions.InsertBatchSize"/>
    /// rows each, with an uncompressed body (18.16 rejects compressed ones). Each request's rows are encoded into pooled
    /// memory before it is sent: when <paramref name="write"/> throws, nothing of that request reaches the server (18.16
    /// stores the rows of a body that is cut off mid-way as if it had ended there). Earlier requests of the same call
    /// stay stored.
    /// </remarks>
    public async Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(write);
        var resolved = RowBinary.Resolve(columns);
        var query = $"INSERT INTO {table} ({string.Join(", ", resolved.Select(c => ClickHouseErrors.QuoteIdentifier(c.Name)))}) FORMAT RowBinary";
        var queryOptions = TextQueryOptions(waitEndOfQuery: false);
        for (var start = 0; start < rows.Count; start += Options.InsertBatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var end = (int)Math.Min(rows.Count, (long)start + Options.InsertBatchSize);
            using var body = new PooledBufferStream();
            Encode(body, resolved, rows, start, end, write);

            // The callback may run again when the HTTP stack resends the request; the body is sent from its start each time.
            using var response = await CallAsync(query, ct => client.PostStreamAsync(query, body.WriteToAsync, isCompressed: false, ct, queryOptions), cancellationToken);
        }

        return rows.Count;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            client.Dispose();
            http.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The driver sends <c>default_format=RowBinaryWithNamesAndTypes</c> with every query; 18.16 lacks that format and
    /// rejects even an <c>INSERT ... SELECT</c> under it, so raw calls name a text format instead.
    /// </summary>
    private static QueryOptions TextQueryOptions(bool waitEndOfQuery)
    {
        var settings = new Dictionary<string, object>(StringComparer.Ordinal) { ["default_format"] = "TabSeparated" };
        if (waitEndOfQuery)
        {
            settings["wait_end_of_query"] = 1;
        }

        return new QueryOptions { CustomSettings = settings };
    }

    private static IEnumerable<object[]> Checked(RowBinaryColumn[] columns, IEnumerable<object?[]> rows)
    {
        long index = 0;
        foreach (var row in rows)
        {
            yield return RowBinary.Check(columns, row, index++)!;
        }
    }

    private static void Encode<T>(Stream body, RowBinaryColumn[] columns, IReadOnlyList<T> rows, int start, int end, RowWriter<T> write)
    {
        var writer = new RowBinaryWriter(body, columns, firstRow: start);
        try
        {
            for (var i = start; i < end; i++)
            {
                var row = rows[i];
                write(writer, in row);
                writer.EndRow();
            }

            writer.Flush();
        }
        finally
        {
            writer.Release();
        }
    }

    private async Task<T> CallAsync<T>(string? query, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        try
        {
            return await call(cancellationToken);
        }
        catch (Exception e) when (Translate(e, query, cancellationToken) is { } translated)
        {
            throw translated;
        }
    }

    private ClickHouseException? Translate(Exception exception, string? query, CancellationToken cancellationToken)
    {
        var endpoint = Options.Endpoint;
        switch (exception)
        {
            case AggregateException { InnerExceptions.Count: 1 } aggregate:
                return Translate(aggregate.InnerExceptions[0], query, cancellationToken);
            case ClickHouseServerException server:
                var code = server.ErrorCode != 0 ? server.ErrorCode : ClickHouseErrors.ParseCode(server.Message);
                return ClickHouseErrors.FromServerText($"ClickHouse server {endpoint}", server.Message, query ?? server.Query, code, server);
            case HttpRequestException { StatusCode: null } http:
                return new ClickHouseException($"ClickHouse server {endpoint} is unreachable: {http.Message}", null, query, true, http);
            case HttpRequestException http:
                var status = (int)http.StatusCode!.Value;
                return new ClickHouseException(
                    string.Create(CultureInfo.InvariantCulture, $"ClickHouse server {endpoint} answered HTTP {status}: {http.Message}"),
                    ClickHouseErrors.ParseCode(http.Message), query, status >= 500 || status == 429, http);
            case OperationCanceledException canceled when !cancellationToken.IsCancellationRequested:
                return new ClickHouseException($"ClickHouse server {endpoint} did not answer within {Options.Timeout}.", null, query, true, canceled);
            case IOException io:
                return new ClickHouseException($"The connection to ClickHouse server {endpoint} failed: {io.Message}", null, query, true, io);
            default:
                return null;
        }
    }

    /// <summary>
    /// Drops the <c>enable_http_compression=false</c> the driver adds to every request: it is the server's default anyway,
    /// and a user with <c>readonly = 1</c> (such as <c>analyst</c>) may change no setting at all, so the server refuses
    /// any request that names one ("Cannot override setting (enable_http_compression) in readonly mode").
    /// </summary>
    private sealed class ReadonlyUserHandler : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri is { Query.Length: > 1 } uri && uri.Query.Contains("enable_http_compression=", StringComparison.Ordinal))
            {
                var kept = uri.Query[1..].Split('&').Where(p => p is not ("enable_http_compression=false" or "enable_http_compression=0"));
                request.RequestUri = new UriBuilder(uri) { Query = string.Join('&', kept) }.Uri;
            }

            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>The response body; disposing it also releases the HTTP response.</summary>
    private sealed class OwningStream(Stream inner, IDisposable owner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => inner.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken) =>
            inner.CopyToAsync(destination, bufferSize, cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                owner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
