using System.Runtime.InteropServices;

namespace LambdaPlatform.Batch.Master;

/// <summary>
/// File-system steps that survive a power loss: a renamed or created entry is durable only once its folder is
/// fsynced, which .NET has no API for (it cannot open a folder as a stream).
/// </summary>
internal static partial class Durable
{
    private const int ORDONLY = 0;
    private const int ODIRECTORY = 0x10000; // Linux

    /// <summary>Creates <paramref name="folder"/> and any missing parent, fsyncing each parent that got a new entry.</summary>
    public static void CreateDirectory(string folder)
    {
        var missing = new Stack<string>();
        for (var f = Path.GetFullPath(folder); !Directory.Exists(f); f = Path.GetDirectoryName(f)!)
        {
            missing.Push(f);
            if (Path.GetDirectoryName(f) is null)
            {
                break;
            }
        }

        if (missing.Count == 0)
        {
            return;
        }

        Directory.CreateDirectory(folder);
        foreach (var created in missing)
        {
            SyncDirectory(Path.GetDirectoryName(created)!);
        }
    }

    /// <summary>
    /// Moves <paramref name="source"/> to <paramref name="destination"/> in the same folder, failing if the destination
    /// exists (readers see either no file or the whole file), then fsyncs the folder.
    /// </summary>
    /// <returns>False when the destination already existed (the source is left in place).</returns>
    public static bool TryPublish(string source, string destination)
    {
        try
        {
            File.Move(source, destination, overwrite: false);
        }
        catch (IOException) when (File.Exists(destination))
        {
            return false;
        }

        SyncDirectory(Path.GetDirectoryName(destination)!);
        return true;
    }

    /// <summary>Deletes a file if present and fsyncs its folder.</summary>
    public static void Delete(string path)
    {
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>fsyncs a folder so that entries created, renamed or deleted in it are durable.</summary>
    /// <exception cref="IOException">The folder cannot be opened or synced.</exception>
    public static void SyncDirectory(string folder)
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // Other systems: rename durability is the file system's business (Windows has no folder fsync).
        }

        var fd = Open(folder, ORDONLY | ODIRECTORY);
        if (fd < 0)
        {
            throw new IOException($"cannot open folder '{folder}' to fsync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of folder '{folder}' failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
