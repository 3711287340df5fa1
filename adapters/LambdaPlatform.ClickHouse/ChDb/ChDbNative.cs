using System.Runtime.InteropServices;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// The chDB C API (<c>chdb.h</c> of chDB 26.5), bound once per process through function pointers.
/// <c>chdb_connect</c> returns a <c>chdb_connection*</c>; queries take the dereferenced <c>chdb_connection</c>;
/// <c>chdb_close_conn</c> takes the pointer again. The library is never unloaded.
/// </summary>
internal sealed unsafe class ChDbNative
{
    private static readonly Lock Gate = new();
    private static ChDbNative? loaded;

    private readonly delegate* unmanaged<int, byte**, nint*> connect;
    private readonly delegate* unmanaged<nint*, void> closeConnection;
    private readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nint> queryN;
    private readonly delegate* unmanaged<nint, byte*> resultBuffer;
    private readonly delegate* unmanaged<nint, nuint> resultLength;
    private readonly delegate* unmanaged<nint, byte*> resultError;
    private readonly delegate* unmanaged<nint, void> destroyResult;

    private ChDbNative(string path, nint handle, ChDbSignals signals)
    {
        LibraryPath = path;
        Signals = signals;
        connect = (delegate* unmanaged<int, byte**, nint*>)Export(handle, "chdb_connect");
        closeConnection = (delegate* unmanaged<nint*, void>)Export(handle, "chdb_close_conn");
        queryN = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nint>)Export(handle, "chdb_query_n");
        resultBuffer = (delegate* unmanaged<nint, byte*>)Export(handle, "chdb_result_buffer");
        resultLength = (delegate* unmanaged<nint, nuint>)Export(handle, "chdb_result_length");
        resultError = (delegate* unmanaged<nint, byte*>)Export(handle, "chdb_result_error");
        destroyResult = (delegate* unmanaged<nint, void>)Export(handle, "chdb_destroy_query_result");
    }

    /// <summary>Full path of the loaded <c>libchdb.so</c>.</summary>
    public string LibraryPath { get; }

    /// <summary>Keeps the runtime's signal handlers in place around chDB's calls.</summary>
    public ChDbSignals Signals { get; }

    /// <summary>Loads the library named by <paramref name="options"/> (once per process).</summary>
    /// <exception cref="ClickHouseException">The library is missing, unloadable, or another copy is loaded already.</exception>
    public static ChDbNative Load(ChDbOptions options)
    {
        var (path, source) = options.ResolveLibrary();
        if (!File.Exists(path))
        {
            throw new ClickHouseException(
                $"chDB library not found: looked for '{path}' ({source}; order: ChDbOptions.LibraryPath, then ${ChDbOptions.LibraryEnvironmentVariable}, then {ChDbOptions.DefaultLibraryPath}). Run `make deps` to install libchdb.so {ChDbOptions.LibraryVersion} there.",
                null, null, false);
        }

        lock (Gate)
        {
            if (loaded is not null)
            {
                return string.Equals(loaded.LibraryPath, path, StringComparison.Ordinal)
                    ? loaded
                    : throw new ClickHouseException(
                        $"chDB is already loaded from '{loaded.LibraryPath}' in this process; it cannot also be loaded from '{path}' ({source}). Use one libchdb.so per process.",
                        null, null, false);
            }

            if (!OperatingSystem.IsLinux())
            {
                throw new ClickHouseException("The embedded chDB backend runs on Linux only (libchdb.so).", null, null, false);
            }

            var signals = new ChDbSignals();
            nint handle;
            using (var scope = signals.Enter())
            {
                try
                {
                    handle = NativeLibrary.Load(path);
                }
                catch (DllNotFoundException e)
                {
                    throw new ClickHouseException($"chDB library '{path}' ({source}) exists but could not be loaded: {e.Message}", null, null, false, e);
                }

                loaded = new ChDbNative(path, handle, signals);
                signals.Attach((nint)loaded.connect);
            }

            return loaded;
        }
    }

    /// <summary>
    /// Opens a connection on <paramref name="dataPath"/>. chDB installs its own handlers for fatal signals (and
    /// SIGTSTP, SIGSYS, SIGRTMIN) when it starts, which would turn the runtime's next NullReferenceException (a
    /// SIGSEGV the runtime handles) into a crash; <see cref="ChDbSignals"/> puts the runtime's back right after.
    /// </summary>
    /// <returns>The <c>chdb_connection*</c>, or zero when chDB refused (e.g. another data path is open).</returns>
    public nint Connect(string dataPath)
    {
        string[] arguments = ["chdb", "--path=" + dataPath];
        var pointers = new nint[arguments.Length];
        try
        {
            for (var i = 0; i < arguments.Length; i++)
            {
                pointers[i] = Marshal.StringToCoTaskMemUTF8(arguments[i]);
            }

            using var scope = Signals.Enter();
            fixed (nint* argv = pointers)
            {
                return (nint)connect(arguments.Length, (byte**)argv);
            }
        }
        finally
        {
            foreach (var pointer in pointers)
            {
                Marshal.FreeCoTaskMem(pointer);
            }
        }
    }

    /// <summary>Closes a connection returned by <see cref="Connect"/>; closing the last one stops the engine.</summary>
    public void Close(nint connection)
    {
        if (connection == 0)
        {
            return;
        }

        using var scope = Signals.Enter();
        closeConnection((nint*)connection);
    }

    /// <summary>Runs <paramref name="query"/> on <paramref name="connection"/> (blocks until the whole result is materialized).</summary>
    /// <returns>The result; on failure, the error text and a released handle.</returns>
    public (ChDbResultHandle Result, string? Error) Query(nint connection, ReadOnlySpan<byte> query, ReadOnlySpan<byte> format)
    {
        nint raw;
        fixed (byte* q = query)
        fixed (byte* f = format)
        {
            raw = queryN(*(nint*)connection, q, (nuint)query.Length, f, (nuint)format.Length);
        }

        Signals.Check();

        var result = new ChDbResultHandle(this, raw);
        if (raw == 0)
        {
            return (result, "chDB returned no result");
        }

        var error = resultError(raw);
        if (error is null)
        {
            return (result, null);
        }

        var text = Marshal.PtrToStringUTF8((nint)error) ?? "unknown chDB error";
        result.Dispose();
        return (result, text);
    }

    /// <summary>The result bytes; valid until the handle is released.</summary>
    public (nint Data, long Length) Buffer(ChDbResultHandle result)
    {
        var raw = result.DangerousGetHandle();
        var data = resultBuffer(raw);
        return data is null ? (0, 0) : ((nint)data, checked((long)resultLength(raw)));
    }

    internal void Destroy(nint result) => destroyResult(result);

    private static nint Export(nint handle, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new ClickHouseException($"The loaded libchdb.so does not export {name}; chDB {ChDbOptions.LibraryVersion} is required.", null, null, false);
}

/// <summary>Owns one <c>chdb_result*</c> and destroys it when released (also from the finalizer).</summary>
internal sealed class ChDbResultHandle : SafeHandle
{
    private readonly ChDbNative native;

    public ChDbResultHandle(ChDbNative native, nint result)
        : base(0, ownsHandle: true)
    {
        this.native = native;
        SetHandle(result);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        native.Destroy(handle);
        return true;
    }
}

/// <summary>A read-only stream over a chDB result buffer; disposing it destroys the native result.</summary>
internal sealed unsafe class ChDbResultStream : UnmanagedMemoryStream
{
    private readonly ChDbResultHandle result;

    public ChDbResultStream(ChDbResultHandle result, nint data, long length)
        : base((byte*)data, length)
    {
        this.result = result;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            result.Dispose();
        }
    }
}
