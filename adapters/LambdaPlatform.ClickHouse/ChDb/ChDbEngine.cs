namespace LambdaPlatform.ClickHouse;

/// <summary>
/// The process-wide chDB engine on one data path, shared by every <see cref="ChDbClickHouse"/> on that path
/// (reference counted). It keeps a pool of connections: one chDB connection runs one statement at a time, so
/// concurrent statements each take their own. When the last user releases it, every connection is closed,
/// which stops chDB and lets the process open another data path. A process-exit hook closes what is still
/// open, because chDB crashes the process at exit otherwise.
/// </summary>
internal sealed class ChDbEngine
{
    // A Monitor (not System.Threading.Lock): the exit hook waits on it for running statements.
    private static readonly object Gate = new();
    private static ChDbEngine? current;
    private static bool exitHookInstalled;

    private readonly ChDbNative native;
    private readonly Stack<nint> idle = new();
    private readonly List<nint> all = [];
    private int references;
    private int rented;
    private bool closed;

    private ChDbEngine(ChDbNative native, string dataPath)
    {
        this.native = native;
        DataPath = dataPath;
    }

    /// <summary>The normalized full data path.</summary>
    public string DataPath { get; }

    /// <summary>Connections opened so far (the pool grows to the highest concurrency seen).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (Gate)
            {
                return all.Count;
            }
        }
    }

    /// <summary>Takes a reference on the engine for <paramref name="dataPath"/>, starting it when needed.</summary>
    /// <exception cref="ClickHouseException">Another data path is open in this process, or chDB refused to start.</exception>
    public static ChDbEngine Acquire(ChDbNative native, string dataPath)
    {
        lock (Gate)
        {
            if (current is { } engine)
            {
                if (!string.Equals(engine.DataPath, dataPath, StringComparison.Ordinal))
                {
                    throw new ClickHouseException(
                        $"chDB is already open on data path '{engine.DataPath}' in this process; chDB allows one data path per process at a time, so '{dataPath}' can be opened only after every ChDbClickHouse on '{engine.DataPath}' is disposed.",
                        null, null, false);
                }

                engine.references++;
                return engine;
            }

            if (!exitHookInstalled)
            {
                AppDomain.CurrentDomain.ProcessExit += (_, _) => ShutdownAtExit();
                exitHookInstalled = true;
            }

            var started = new ChDbEngine(native, dataPath);
            var first = native.Connect(dataPath);
            if (first == 0)
            {
                throw new ClickHouseException(
                    $"chDB could not open data path '{dataPath}' (chdb_connect returned no connection; chDB logs the reason to stderr). Check that the folder is writable and not used by another chDB process.",
                    null, null, false);
            }

            started.all.Add(first);
            started.idle.Push(first);
            started.references = 1;
            current = started;
            return started;
        }
    }

    /// <summary>Drops a reference; the last one closes every connection.</summary>
    public void Release()
    {
        lock (Gate)
        {
            if (--references > 0 || closed)
            {
                return;
            }

            CloseAll();
        }
    }

    /// <summary>Takes an idle connection or opens a new one. The caller bounds concurrency.</summary>
    public nint Rent()
    {
        lock (Gate)
        {
            ObjectDisposedException.ThrowIf(closed, this);
            rented++;
            if (idle.TryPop(out var connection))
            {
                return connection;
            }

            connection = native.Connect(DataPath);
            if (connection == 0)
            {
                rented--;
                throw new ClickHouseException($"chDB refused another connection on '{DataPath}'.", null, null, true);
            }

            all.Add(connection);
            return connection;
        }
    }

    /// <summary>Gives a connection back to the pool.</summary>
    public void Return(nint connection)
    {
        lock (Gate)
        {
            rented--;
            idle.Push(connection);
            Monitor.PulseAll(Gate);
        }
    }

    private void CloseAll()
    {
        closed = true;
        foreach (var connection in all)
        {
            native.Close(connection);
        }

        all.Clear();
        idle.Clear();
        if (ReferenceEquals(current, this))
        {
            current = null;
        }
    }

    private static void ShutdownAtExit()
    {
        lock (Gate)
        {
            if (current is not { } engine)
            {
                return;
            }

            // Give statements still running on other threads a moment; closing a connection under a running
            // statement would crash, and not closing at all crashes at exit.
            var deadline = Environment.TickCount64 + 5_000;
            while (engine.rented > 0 && Environment.TickCount64 < deadline)
            {
                Monitor.Wait(Gate, 100);
            }

            engine.CloseAll();
        }
    }
}
