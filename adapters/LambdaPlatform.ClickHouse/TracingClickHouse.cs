using System.Diagnostics;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// An <see cref="IClickHouse"/> that records every statement as a client span on <see cref="SourceName"/> — a child of the
/// operation that ran it (an HTTP request, a flush, a batch step) — with <c>db.system</c>, <c>db.operation</c> and
/// <c>db.statement</c> (cut to <see cref="MaxStatementLength"/> characters). A query's span lasts until its result stream is
/// disposed (the server streams the result while it is read). Statements run outside any traced operation (e.g. the API's
/// once-a-second poll of the pipeline state) make no span, so a trace backend is not flooded with roots.
/// </summary>
/// <remarks>Thread-safe when the inner client is; disposing disposes the inner client.</remarks>
/// <param name="inner">The client that runs the statements.</param>
public sealed class TracingClickHouse(IClickHouse inner) : IClickHouse
{
    /// <summary>Name of the activity source of ClickHouse statements: <c>LambdaPlatform.ClickHouse</c>.</summary>
    public const string SourceName = "LambdaPlatform.ClickHouse";

    /// <summary>Longest <c>db.statement</c> recorded, in characters (2,000); longer statements are cut and end with <c>…</c>.</summary>
    public const int MaxStatementLength = 2000;

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>The client that runs the statements.</summary>
    public IClickHouse Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <inheritdoc />
    public string BackendName => Inner.BackendName;

    /// <summary>Wraps <paramref name="clickHouse"/> unless it already is a <see cref="TracingClickHouse"/>.</summary>
    public static IClickHouse Wrap(IClickHouse clickHouse) => clickHouse as TracingClickHouse ?? new TracingClickHouse(clickHouse);

    /// <inheritdoc />
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken = default)
    {
        using var activity = Start(sql, null);
        try
        {
            await Inner.ExecuteAsync(sql, cancellationToken);
        }
        catch (Exception e)
        {
            Failed(activity, e);
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default)
    {
        var activity = Start(sql, format);
        if (activity is null)
        {
            return await Inner.QueryAsync(sql, format, cancellationToken);
        }

        try
        {
            return new SpanStream(await Inner.QueryAsync(sql, format, cancellationToken), activity);
        }
        catch (Exception e)
        {
            Failed(activity, e);
            activity.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default)
        => TraceInsertAsync(table, () => Inner.InsertAsync(table, columns, rows, cancellationToken));

    /// <inheritdoc />
    /// <remarks>Makes the same span as the boxed insert.</remarks>
    public Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default)
        => TraceInsertAsync(table, () => Inner.InsertAsync(table, columns, rows, write, cancellationToken));

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    /// <summary>The first keyword of a statement (<c>SELECT</c>, <c>INSERT</c>, <c>ALTER</c> …), upper-case; <c>QUERY</c> when there is none.</summary>
    public static string Operation(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var span = sql.AsSpan().TrimStart();
        var end = 0;
        while (end < span.Length && end < 16 && char.IsAsciiLetter(span[end]))
        {
            end++;
        }

        return end == 0 ? "QUERY" : span[..end].ToString().ToUpperInvariant();
    }

    /// <summary><paramref name="sql"/> cut to <see cref="MaxStatementLength"/> characters.</summary>
    public static string Truncate(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        return sql.Length <= MaxStatementLength ? sql : string.Concat(sql.AsSpan(0, MaxStatementLength - 1), "…");
    }

    private async Task<long> TraceInsertAsync(string table, Func<Task<long>> insert)
    {
        ArgumentNullException.ThrowIfNull(table);
        using var activity = Start(null, null, table);
        try
        {
            var sent = await insert();
            activity?.SetTag("db.response.returned_rows", sent);
            return sent;
        }
        catch (Exception e)
        {
            Failed(activity, e);
            throw;
        }
    }

    private Activity? Start(string? sql, string? format, string? insertInto = null)
    {
        if (Activity.Current is null || !Source.HasListeners())
        {
            return null;
        }

        var operation = insertInto is null ? Operation(sql!) : "INSERT";
        var activity = Source.StartActivity("clickhouse " + operation, ActivityKind.Client);
        if (activity is null)
        {
            return null;
        }

        activity.SetTag("db.system", "clickhouse");
        activity.SetTag("db.operation", operation);
        activity.SetTag("db.statement", insertInto is null ? Truncate(sql!) : $"INSERT INTO {insertInto} (bulk)");
        activity.SetTag("lambda.clickhouse.backend", Inner.BackendName);
        if (insertInto is not null)
        {
            activity.SetTag("db.collection.name", insertInto);
        }

        if (format is not null)
        {
            activity.SetTag("lambda.clickhouse.format", format);
        }

        return activity;
    }

    private static void Failed(Activity? activity, Exception e)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, e.Message.Split('\n')[0]);
        activity.SetTag("error.type", e is ClickHouseException { ErrorCode: { } code } ? "clickhouse." + code.ToString(System.Globalization.CultureInfo.InvariantCulture) : e.GetType().Name);
    }

    /// <summary>A query's result; its span ends when it is disposed.</summary>
    private sealed class SpanStream(Stream inner, Activity activity) : Stream
    {
        private int _disposed;

        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => false;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => inner.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken) => inner.CopyToAsync(destination, bufferSize, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                inner.Dispose();
                activity.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                await inner.DisposeAsync();
                activity.Dispose();
            }

            await base.DisposeAsync();
        }
    }
}
