using System.Runtime.InteropServices;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// The entry point of this assembly (the test SDK's generated one is switched off). Run by the test runner it is
/// never called; <c>dotnet LambdaPlatform.ClickHouse.Tests.dll signal-child ...</c> runs <see cref="SignalChild"/>.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args) =>
        args is [SignalChild.Verb, var mode, var dataPath] ? await SignalChild.RunAsync(mode, dataPath) : 0;
}

/// <summary>
/// A process shaped like <c>lambda up</c>: it opens chDB, runs a query, an insert and two statements at once (a second
/// pooled connection), then waits until SIGINT or SIGTERM cancels it through <see cref="PosixSignalRegistration"/>,
/// the way System.CommandLine and the generic host do, and exits 0 after printing <see cref="StoppedMarker"/>.
/// </summary>
internal static class SignalChild
{
    public const string Verb = "signal-child";
    public const string ReadyMarker = "signal-child: ready";
    public const string StoppedMarker = "signal-child: stopped gracefully";

    /// <summary>Registers the handlers while chDB starts, as System.CommandLine does after the action's first await.</summary>
    public const string RegisterWhileStarting = "while-starting";

    /// <summary>Registers them inside a window in which chDB's handler changes are being undone (the runtime
    /// installs its SIGTERM handler only then, so a blind restore of the snapshot would remove it).</summary>
    public const string RegisterInsideWindow = "inside-window";

    /// <summary>Registers before chDB starts; once it runs, points SIGINT and SIGTERM into <c>libchdb.so</c> (as chDB
    /// would if it installed handlers again later, e.g. from a background thread), then runs one more query.</summary>
    public const string TakenAfterStart = "taken-after-start";

    public static async Task<int> RunAsync(string mode, string dataPath)
    {
        // A shell that starts jobs in the background without job control hands them SIGINT ignored, and .NET then
        // leaves it ignored; a terminal's Ctrl-C is what this child stands for.
        if (NativeSignals.Handler(NativeSignals.SigInt) == 1)
        {
            NativeSignals.SetDefault(NativeSignals.SigInt);
        }

        using var stop = new CancellationTokenSource();
        var registrations = new List<PosixSignalRegistration>();
        void Register()
        {
            foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            {
                registrations.Add(PosixSignalRegistration.Create(signal, context =>
                {
                    context.Cancel = true;
                    stop.Cancel();
                }));
            }
        }

        var options = new ChDbOptions { DataPath = dataPath, MaxConcurrentQueries = 2 };
        ChDbClickHouse clickHouse;
        if (mode == RegisterInsideWindow)
        {
            var native = ChDbNative.Load(options);
            using (native.Signals.Enter())
            {
                Register();
            }

            clickHouse = await ChDbClickHouse.CreateAsync(options);
        }
        else if (mode == TakenAfterStart)
        {
            Register();
            clickHouse = await ChDbClickHouse.CreateAsync(options);
        }
        else
        {
            var opening = ChDbClickHouse.CreateAsync(options);
            Register();
            clickHouse = await opening;
        }

        await using (clickHouse)
        {
            await clickHouse.ExecuteAsync("CREATE TABLE IF NOT EXISTS default.signal_child (k UInt64) ENGINE = MergeTree ORDER BY k");
            await clickHouse.InsertAsync("default.signal_child", [new("k", "UInt64")], [[1UL], [2UL]]);
            await using (var result = await clickHouse.QueryAsync("SELECT sum(k) FROM default.signal_child", "TabSeparated"))
            {
                using var reader = new StreamReader(result);
                Console.WriteLine("sum " + (await reader.ReadToEndAsync()).Trim());
            }

            await Task.WhenAll(clickHouse.ExecuteAsync("SELECT sleep(0.2)"), clickHouse.ExecuteAsync("SELECT sleep(0.2)"));
            if (mode == TakenAfterStart)
            {
                // Any code inside the library will do: the signal is sent only after the next query repaired it.
                var insideChDb = NativeLibrary.GetExport(NativeLibrary.Load(clickHouse.LibraryPath), "chdb_query_n");
                NativeSignals.SetHandler(NativeSignals.SigInt, insideChDb);
                NativeSignals.SetHandler(NativeSignals.SigTerm, insideChDb);
                await clickHouse.ExecuteAsync("SELECT 1");
            }

            Console.WriteLine($"handlers: SIGINT {Describe(NativeSignals.SigInt)}, SIGTERM {Describe(NativeSignals.SigTerm)}; connections {clickHouse.OpenConnections}");
            Console.WriteLine(ReadyMarker);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                Console.WriteLine(StoppedMarker);
            }
        }

        foreach (var registration in registrations)
        {
            registration.Dispose();
        }

        return 0;
    }

    private static string Describe(int signal) => NativeSignals.Handler(signal) is { } handler ? NativeSignals.Owner(handler) : "?";
}
