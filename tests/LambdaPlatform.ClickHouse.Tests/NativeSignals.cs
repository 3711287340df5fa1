using System.Runtime.InteropServices;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>Reads signal dispositions with libc, independently of the code under test.</summary>
internal static unsafe partial class NativeSignals
{
    public const int SigInt = 2;
    public const int SigTerm = 15;
    private const int SigactionSize = 256;

    /// <summary>The handler address of <paramref name="signal"/> (0 = SIG_DFL, 1 = SIG_IGN), or null if it has none.</summary>
    public static nint? Handler(int signal)
    {
        var action = stackalloc byte[SigactionSize];
        return sigaction(signal, null, action) == 0 ? *(nint*)action : null;
    }

    /// <summary>File name of the library that contains <paramref name="handler"/>, or "SIG_DFL"/"SIG_IGN".</summary>
    public static string Owner(nint handler)
    {
        if (handler is 0 or 1)
        {
            return handler == 0 ? "SIG_DFL" : "SIG_IGN";
        }

        DlInfo info;
        return dladdr(handler, &info) != 0 ? Path.GetFileName(Marshal.PtrToStringUTF8(info.FileName) ?? "?") : $"0x{handler:x}";
    }

    /// <summary>Sets <paramref name="signal"/> to SIG_DFL.</summary>
    public static void SetDefault(int signal)
    {
        var action = stackalloc byte[SigactionSize];
        new Span<byte>(action, SigactionSize).Clear();
        _ = sigaction(signal, action, null);
    }

    /// <summary>Points <paramref name="signal"/>'s handler at <paramref name="handler"/>, keeping its flags and mask.</summary>
    public static void SetHandler(int signal, nint handler)
    {
        var action = stackalloc byte[SigactionSize];
        if (sigaction(signal, null, action) != 0)
        {
            throw new InvalidOperationException($"sigaction({signal}) failed");
        }

        *(nint*)action = handler;
        _ = sigaction(signal, action, null);
    }

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>.</summary>
    public static void Send(int pid, int signal)
    {
        if (kill(pid, signal) != 0)
        {
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
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

    [LibraryImport("libc.so.6")]
    private static partial int sigaction(int signal, byte* action, byte* oldAction);

    [LibraryImport("libc.so.6")]
    private static partial int dladdr(nint address, DlInfo* info);

    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
