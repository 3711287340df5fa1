using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace LambdaPlatform.Jobs.Tests;

/// <summary>
/// A real PostgreSQL server for the tests: Debian's binaries (<c>/usr/lib/postgresql/&lt;version&gt;/bin</c>, package
/// <c>postgresql</c>), a fresh cluster in a temporary folder, listening on a free loopback port, with one database
/// created for the test. When the test process runs as root the server runs as the <c>postgres</c> user (PostgreSQL
/// refuses root). Stopped and deleted on dispose.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    // /tmp rather than $TMPDIR: the postgres user must be able to create the folder.
    private readonly string _dataDirectory = Path.Combine(Directory.Exists("/tmp") ? "/tmp" : Path.GetTempPath(), "lambda-pg-" + Guid.NewGuid().ToString("N")[..12]);
    private string _bin = string.Empty;
    private bool _started;

    public int Port { get; private set; }

    public string Database { get; } = "lambda_jobs_" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Connection string of <see cref="Database"/>.</summary>
    public string ConnectionString => ConnectionStringOf(Database);

    public async Task InitializeAsync()
    {
        _bin = FindBinaries();
        Port = FreePort();
        await RunAsync("initdb", "-D", _dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync");
        var serverOptions = string.Create(CultureInfo.InvariantCulture,
            $"-p {Port} -k {_dataDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        await RunAsync("pg_ctl", "-D", _dataDirectory, "-l", Path.Combine(_dataDirectory, "server.log"), "-o", serverOptions, "-w", "-t", "60", "start");
        _started = true;

        await using var connection = new NpgsqlConnection(ConnectionStringOf("postgres"));
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {Database}", connection);
        await create.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_started)
        {
            await RunAsync("pg_ctl", "-D", _dataDirectory, "-m", "immediate", "-w", "stop");
        }

        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }

    private string ConnectionStringOf(string database) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database, Pooling = true }.ConnectionString;

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
    private async Task RunAsync(string tool, params string[] arguments)
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
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            var log = Path.Combine(_dataDirectory, "server.log");
            throw new InvalidOperationException($"{tool} failed ({process.ExitCode}): {await stdout}{await stderr}{(File.Exists(log) ? await File.ReadAllTextAsync(log) : string.Empty)}");
        }
    }
}
