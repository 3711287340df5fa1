using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>
/// A real PostgreSQL server for tests and chaos runs: Debian's binaries (<c>/usr/lib/postgresql/&lt;version&gt;/bin</c>, package
/// <c>postgresql</c>, installed by the Makefile's <c>deps</c>), a fresh cluster in a folder of its own under <c>/tmp</c>, listening
/// on a fixed free loopback port, so it can be stopped (<see cref="StopAsync"/>, as a crash) and started again at the same address
/// with the same data (<see cref="StartAgainAsync"/>). When the process runs as root the server runs as the <c>postgres</c> user
/// (PostgreSQL refuses root). The superuser <c>postgres</c> connects without a password (trust, loopback only). Stopped and deleted on dispose.
/// </summary>
public sealed class PostgresServerProcess : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _options;

    private PostgresServerProcess(string bin, string dataDirectory, int port)
    {
        _bin = bin;
        DataDirectory = dataDirectory;
        Port = port;
        _options = string.Create(CultureInfo.InvariantCulture,
            $"-p {port} -k {dataDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }

    /// <summary>The loopback port (kept across restarts).</summary>
    public int Port { get; }

    /// <summary>The cluster's folder (kept across restarts, deleted on dispose).</summary>
    public string DataDirectory { get; }

    /// <summary>Whether the server was started and not stopped since.</summary>
    public bool Running { get; private set; }

    /// <summary>Creates a cluster in a new folder under <c>/tmp</c> and starts the server on a free port.</summary>
    /// <exception cref="InvalidOperationException">The binaries are missing, or a tool failed (its output and the server log in the message).</exception>
    public static async Task<PostgresServerProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        // /tmp rather than $TMPDIR: the postgres user must be able to create the folder.
        var folder = Path.Combine(Directory.Exists("/tmp") ? "/tmp" : Path.GetTempPath(), "lambda-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var server = new PostgresServerProcess(FindBinaries(), folder, FreePort());
        await server.RunAsync("initdb", ["-D", folder, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], cancellationToken);
        await server.StartAgainAsync(cancellationToken);
        return server;
    }

    /// <summary>Connection string of <paramref name="database"/> as the superuser <c>postgres</c>.</summary>
    public string ConnectionStringOf(string database) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database, Pooling = true }.ConnectionString;

    /// <summary>Creates a database.</summary>
    public async Task CreateDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionStringOf("postgres"));
        await connection.OpenAsync(cancellationToken);
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Stops the server as a crash would (<c>pg_ctl stop -m immediate</c>: every session is cut at once, no checkpoint); the data stays
    /// and <see cref="StartAgainAsync"/> recovers it.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Running)
        {
            Running = false;
            await RunAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "stop"], cancellationToken);
        }
    }

    /// <summary>Starts the server (again) on the same folder and port; returns once it accepts connections.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (!Running)
        {
            await RunAsync("pg_ctl", ["-D", DataDirectory, "-l", Path.Combine(DataDirectory, "server.log"), "-o", _options, "-w", "-t", "60", "start"], cancellationToken);
            Running = true;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await StopAsync();
        if (Directory.Exists(DataDirectory))
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
    }

    private static string FindBinaries()
    {
        var versions = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Where(d => File.Exists(Path.Combine(d, "bin", "initdb")) && File.Exists(Path.Combine(d, "bin", "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                .ToList()
            : [];
        return versions.Count > 0
            ? Path.Combine(versions[0], "bin")
            : throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install Debian's 'postgresql' package (see the Makefile's deps)");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a PostgreSQL tool to completion (as the postgres user when we are root); throws with its output on failure.</summary>
    private async Task RunAsync(string tool, string[] arguments, CancellationToken cancellationToken)
    {
        var asRoot = Environment.UserName == "root";
        var start = new ProcessStartInfo(asRoot ? "runuser" : Path.Combine(_bin, tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asRoot)
        {
            foreach (var a in (string[])["-u", "postgres", "--", Path.Combine(_bin, tool)])
            {
                start.ArgumentList.Add(a);
            }
        }

        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            var log = Path.Combine(DataDirectory, "server.log");
            throw new InvalidOperationException($"{tool} failed ({process.ExitCode}): {await stdout}{await stderr}{(File.Exists(log) ? await File.ReadAllTextAsync(log, cancellationToken) : string.Empty)}");
        }
    }
}
