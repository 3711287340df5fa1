namespace LambdaPlatform.ClickHouse;

/// <summary>
/// What the platform needs from ClickHouse, and nothing more: statements, streamed query results in a
/// named ClickHouse format, and bulk inserts. Implemented by the embedded chDB backend and by the
/// ClickHouse server backend (HTTP). Every SQL text the platform emits must be accepted by both
/// ClickHouse 18.16 and 26.5.
/// </summary>
/// <remarks>Implementations are safe to call from several threads at once.</remarks>
public interface IClickHouse : IAsyncDisposable
{
    /// <summary>Short backend name for logs and metrics: <c>chdb</c> or <c>server</c>.</summary>
    string BackendName { get; }

    /// <summary>Runs one DDL or data statement (no result expected).</summary>
    /// <exception cref="ClickHouseException">The statement failed or the backend is unreachable.</exception>
    Task ExecuteAsync(string sql, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs one query and returns its result encoded in <paramref name="format"/> (any ClickHouse output
    /// format, e.g. <c>TabSeparatedWithNames</c>, <c>JSONEachRow</c>, <c>JSONCompact</c>, <c>CSV</c>).
    /// The caller disposes the stream. The SQL must not carry its own FORMAT clause.
    /// </summary>
    /// <exception cref="ClickHouseException">The query failed or the backend is unreachable.</exception>
    Task<Stream> QueryAsync(string sql, string format, CancellationToken cancellationToken = default);

    /// <summary>
    /// Inserts rows in bulk into <paramref name="table"/>. Values follow <see cref="ClickHouseColumn.Type"/>:
    /// String → <see cref="string"/>; (U)Int8..64 → the matching CLR integer; Float32/64 → float/double;
    /// DateTime → <see cref="DateTime"/> (UTC); DateTime64(3) → <see cref="DateTime"/> (UTC); Date →
    /// <see cref="DateOnly"/>; UUID → <see cref="Guid"/>; Nullable(T) → null or T; Array(T), for T one of String,
    /// (U)Int8..64, Float32/64 → a CLR array of exactly that element type (Array(UInt8) → <c>byte[]</c>, Array(Int32) →
    /// <c>int[]</c>, Array(UInt64) → <c>ulong[]</c>, Array(String) → <c>string[]</c> without null elements, …), empty
    /// allowed, never null. Other types (e.g. Array(Nullable(T)), Array(DateTime), LowCardinality, Decimal) are rejected
    /// with <see cref="ArgumentException"/>.
    /// </summary>
    /// <param name="table">Target table, optionally qualified with its database.</param>
    /// <param name="columns">Columns in the order of each row's values.</param>
    /// <param name="rows">Rows to insert; enumerated once.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <returns>The number of rows sent.</returns>
    /// <exception cref="ClickHouseException">The insert failed or the backend is unreachable.</exception>
    Task<long> InsertAsync(string table, IReadOnlyList<ClickHouseColumn> columns, IEnumerable<object?[]> rows, CancellationToken cancellationToken = default);

    /// <summary>
    /// Inserts rows in bulk into <paramref name="table"/> without boxing: <paramref name="write"/> encodes each row straight
    /// into RowBinary with one <see cref="RowBinaryWriter"/> call per column, in the order of <paramref name="columns"/>
    /// (same column types as the boxed overload; see <see cref="RowBinaryWriter"/>). The bytes are those the boxed
    /// overload writes for the same values.
    /// </summary>
    /// <typeparam name="T">The caller's row type (a struct is passed by reference).</typeparam>
    /// <param name="table">Target table, optionally qualified with its database.</param>
    /// <param name="columns">Columns in the order <paramref name="write"/> writes them.</param>
    /// <param name="rows">Rows to insert. May be read more than once (e.g. a backend that splits or resends a request), so
    /// it must not change during the call.</param>
    /// <param name="write">Writes one row; called on a thread-pool thread, one row at a time. It must not keep the writer.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <returns>The number of rows sent (<c>rows.Count</c>).</returns>
    /// <exception cref="ArgumentException">A column type is not supported, or <paramref name="write"/> wrote a row that does
    /// not match <paramref name="columns"/> (a value of another type, too few or too many values, a value out of range);
    /// nothing of that insert is stored on the chDB backend, nor on the server backend when it fits one request of
    /// <see cref="ClickHouseServerOptions.InsertBatchSize"/> rows.</exception>
    /// <exception cref="ClickHouseException">The insert failed or the backend is unreachable.</exception>
    Task<long> InsertAsync<T>(string table, IReadOnlyList<ClickHouseColumn> columns, IReadOnlyList<T> rows, RowWriter<T> write, CancellationToken cancellationToken = default);
}

/// <summary>A column of a bulk insert: its name and ClickHouse type (e.g. <c>UInt64</c>, <c>DateTime64(3)</c>).</summary>
/// <param name="Name">Column name as in the table.</param>
/// <param name="Type">ClickHouse type name.</param>
public sealed record ClickHouseColumn(string Name, string Type);
