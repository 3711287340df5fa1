using System.Runtime.InteropServices;

namespace LambdaPlatform.ClickHouse;

/// <summary>
/// Keeps chDB from taking over the process's signal handling. Measured with chDB 26.5.3: <c>chdb_connect</c>
/// installs its own handlers for SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGTSTP, SIGSYS and SIGRTMIN (the
/// runtime's thread-activation signal, used to suspend threads for the GC); queries, inserts, pooled connections and
/// chDB's background threads were not seen to change any handler afterwards.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Enter"/> snapshots the handlers of every signal before a native call that can install handlers
/// (<c>chdb_connect</c>, <c>chdb_close_conn</c>); disposing the scope puts back exactly those that now point into
/// <c>libchdb.so</c> (or were reset to SIG_DFL/SIG_IGN). A handler that changed to anything else was installed by
/// the runtime meanwhile (.NET installs some lazily: SIGTERM on the first <see cref="PosixSignalRegistration"/> for it,
/// SIGCHLD on the first <c>Process.Start</c>) and is kept: restoring the snapshot blindly would reinstate the old
/// handler while .NET's native layer believes its own is installed, and the signal would never reach managed code.
/// </para>
/// <para>
/// <see cref="Check"/> runs after every query: four <c>sigaction</c> reads (SIGINT, SIGSEGV, SIGTERM, SIGRTMIN; about
/// 5 µs in all on a 2-core VM where a syscall costs 1.2 µs, next to ~1.2 ms for <c>SELECT 1</c>) that notice a handler
/// chDB installed later, e.g. from a background thread, and then put back the runtime's for every signal.
/// </para>
/// </remarks>
internal sealed unsafe partial class ChDbSignals
{
    // struct sigaction is 152 bytes on x86_64 and aarch64 glibc, the handler first; kept opaque with room to spare.
    private const int SigactionSize = 256;
    private const int MaxSignal = 64;
    private const int SigKill = 9;
    private const int SigStop = 19;

    private readonly Lock gate = new();
    private nint chDbBase;

    // The process's handlers as .NET set them up, one struct sigaction per signal (index = signal number).
    private readonly byte[] runtimeActions = new byte[(MaxSignal + 1) * SigactionSize];
    private readonly byte[] scratch = new byte[(MaxSignal + 1) * SigactionSize];
    private readonly bool[] valid = new bool[MaxSignal + 1];

    // What Check compares with: the handler address of each watched signal after the last repair.
    private readonly int[] watched;
    private readonly nint[] watchedHandlers;

    // .NET installs its SIGCHLD handler lazily, on the first Process.Start, and initializes its signal handling (SIGINT,
    // SIGQUIT, SIGCONT, SIGCHLD, ...) on the first registration. Registering for SIGCHLD does both now, before chDB
    // first connects; the registration lives as long as the process and only observes.
    private static PosixSignalRegistration? childSignal;

    /// <summary>Snapshots the process's handlers; call before <c>libchdb.so</c> is loaded.</summary>
    public ChDbSignals()
    {
        // chDB installs one handler for all its fatal signals (SIGSEGV stands for them) and another for SIGRTMIN;
        // SIGINT and SIGTERM are the ones a user notices. Each read is a syscall (~0.2 µs, ~1.2 µs on a VM).
        watched = [2, 11, 15, Libc.CurrentSigRtMin()];
        watchedHandlers = new nint[watched.Length];
        lock (gate)
        {
            if (childSignal is null && !OperatingSystem.IsWindows())
            {
                childSignal = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, static _ => { });
            }

            Snapshot();
        }
    }

    /// <summary>Names the loaded library by one of its exports, so handlers inside it can be recognized.</summary>
    public void Attach(nint chDbExport)
    {
        DlInfo info;
        Volatile.Write(ref chDbBase, Libc.dladdr(chDbExport, &info) != 0 ? info.BaseAddress : 0);
    }

    /// <summary>Repairs made so far (handlers chDB had installed that were put back); for tests and diagnostics.</summary>
    public int Repairs { get; private set; }

    /// <summary>
    /// Snapshots the handlers before a native call that installs handlers; disposing the scope puts back what chDB
    /// replaced. Scopes are serialized process-wide; dispose on the same thread.
    /// </summary>
    public Scope Enter()
    {
        gate.Enter();
        try
        {
            // Puts back what chDB may have installed since the last call before taking the snapshot to restore.
            Repair();
            Snapshot();
        }
        catch
        {
            gate.Exit();
            throw;
        }

        return new Scope(this);
    }

    /// <summary>
    /// Cheap check after a native call that is not expected to touch handlers: when a watched signal's handler moved,
    /// repairs every signal whose handler chDB took.
    /// </summary>
    public void Check()
    {
        var action = stackalloc byte[SigactionSize];
        for (var i = 0; i < watched.Length; i++)
        {
            if (Libc.sigaction(watched[i], null, action) == 0 && *(nint*)action != Volatile.Read(ref watchedHandlers[i]))
            {
                lock (gate)
                {
                    Repair();
                    Snapshot();
                }

                return;
            }
        }
    }

    /// <summary>True when <paramref name="handler"/> is code inside <c>libchdb.so</c>.</summary>
    public bool IsChDbHandler(nint handler)
    {
        var library = Volatile.Read(ref chDbBase);
        if (handler is 0 or 1 || library == 0)
        {
            return false;
        }

        DlInfo info;
        return Libc.dladdr(handler, &info) != 0 && info.BaseAddress == library;
    }

    // Records the current handlers as the runtime's. Holds the gate.
    private void Snapshot()
    {
        fixed (byte* buffer = runtimeActions)
        {
            for (var signal = 1; signal <= MaxSignal; signal++)
            {
                // glibc refuses its two internal real-time signals (32, 33); those and SIGKILL/SIGSTOP are skipped.
                valid[signal] = signal is not (SigKill or SigStop) && Libc.sigaction(signal, null, buffer + (signal * SigactionSize)) == 0;
            }

            for (var i = 0; i < watched.Length; i++)
            {
                Volatile.Write(ref watchedHandlers[i], valid[watched[i]] ? *(nint*)(buffer + (watched[i] * SigactionSize)) : 0);
            }
        }
    }

    // Puts back the snapshot of each signal whose handler chDB replaced since. Holds the gate.
    private void Repair()
    {
        fixed (byte* before = runtimeActions)
        fixed (byte* now = scratch)
        {
            for (var signal = 1; signal <= MaxSignal; signal++)
            {
                var old = before + (signal * SigactionSize);
                var current = now + (signal * SigactionSize);
                if (!valid[signal] || Libc.sigaction(signal, null, current) != 0)
                {
                    continue;
                }

                var oldHandler = *(nint*)old;
                var currentHandler = *(nint*)current;
                if (currentHandler == oldHandler)
                {
                    continue;
                }

                // SIG_DFL (0) and SIG_IGN (1) are not attributable to anyone; the runtime never resets its handlers
                // while running, so such a change is chDB's too.
                if ((currentHandler is 0 or 1 || IsChDbHandler(currentHandler)) && Libc.sigaction(signal, old, null) == 0)
                {
                    Repairs++;
                }
            }
        }
    }

    /// <summary>The window of one native call; disposing it repairs the handlers and releases the gate.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly ChDbSignals owner;

        internal Scope(ChDbSignals owner)
        {
            this.owner = owner;
        }

        /// <inheritdoc />
        public void Dispose()
        {
            try
            {
                owner.Repair();
                owner.Snapshot();
            }
            finally
            {
                owner.gate.Exit();
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct DlInfo
    {
        public nint FileName;
        public nint BaseAddress;
        public nint SymbolName;
        public nint SymbolAddress;
    }

    private static partial class Libc
    {
        [LibraryImport("libc.so.6")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static partial int sigaction(int signal, byte* action, byte* oldAction);

        [LibraryImport("libc.so.6")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static partial int dladdr(nint address, DlInfo* info);

        [LibraryImport("libc.so.6", EntryPoint = "__libc_current_sigrtmin")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static partial int CurrentSigRtMin();
    }
}
