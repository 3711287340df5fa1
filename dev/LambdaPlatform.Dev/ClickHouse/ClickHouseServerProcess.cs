using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security;
using System.Security.Cryptography;
using System.Text;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.Dev.ClickHouse;

/// <summary>How to start a local <c>clickhouse-server</c> process.</summary>
public sealed record ClickHouseServerProcessOptions
{
    /// <summary>The default server binary (Debian's <c>clickhouse-server</c> package).</summary>
    public const string DefaultServerPath = "/usr/sbin/clickhouse-server";

    /// <summary>Server binary. Default <c>/usr/sbin/clickhouse-server</c>.</summary>
    public string ServerPath { get; init; } = DefaultServerPath;

    /// <summary>
    /// Folder for the generated configuration, data and logs. Default null: a new temporary folder that is
    /// deleted when the process is disposed (a folder given here is kept).
    /// </summary>
    public string? DataPath { get; init; }

    /// <summary>HTTP port on 127.0.0.1. Default null: a free port.</summary>
    public int? HttpPort { get; init; }

    /// <summary>Native TCP port on 127.0.0.1. Default null: a free port.</summary>
    public int? TcpPort { get; init; }

    /// <summary>Longest wait for the server to answer <c>/ping</c>. Default 60 seconds.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// When <see cref="ServerPath"/> is the default and missing, run <c>apt-get install -y clickhouse-server</c>
    /// (needs root). Default true.
    /// </summary>
    public bool InstallIfMissing { get; init; } = true;

    /// <summary>
    /// Password of the <c>writer</c> user, the account the platform writes with. Default null: a random one (see
    /// <see cref="ClickHouseServerProcess.WriterConnectionOptions"/>). Pass it from configuration or the environment
    /// (e.g. <see cref="WriterPasswordVariable"/>), never from code. Only its SHA-256 is written to <c>users.xml</c>.
    /// </summary>
    public string? WriterPassword { get; init; }

    /// <summary>Password of the read-only <c>analyst</c> user. Default empty. Only its SHA-256 is written to <c>users.xml</c>.</summary>
    public string AnalystPassword { get; init; } = string.Empty;

    /// <summary>Environment variable that callers read <see cref="WriterPassword"/> from: <c>LAMBDA_CLICKHOUSE_PASSWORD</c>.</summary>
    public const string WriterPasswordVariable = "LAMBDA_CLICKHOUSE_PASSWORD";

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ServerPath))
        {
            throw new ArgumentException("ClickHouseServerProcessOptions.ServerPath must not be empty.", nameof(ServerPath));
        }

        if (HttpPort is < 1 or > 65535 || TcpPort is < 1 or > 65535)
        {
            throw new ArgumentException("ClickHouseServerProcessOptions.HttpPort and TcpPort must be 1..65535 when set.", nameof(HttpPort));
        }

        if (StartTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"ClickHouseServerProcessOptions.StartTimeout must be positive (was {StartTimeout}).", nameof(StartTimeout));
        }

        // The messages never quote a password.
        if (WriterPassword is not null && (WriterPassword.Length < 8 || WriterPassword.Any(char.IsControl)))
        {
            throw new ArgumentException("ClickHouseServerProcessOptions.WriterPassword must be at least 8 characters without control characters (or unset for a random one).", nameof(WriterPassword));
        }

        if (AnalystPassword is null || AnalystPassword.Any(char.IsControl))
        {
            throw new ArgumentException("ClickHouseServerProcessOptions.AnalystPassword must not be null nor have control characters (empty for none).", nameof(AnalystPassword));
        }
    }

    /// <summary>Describes the options without the passwords.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"clickhouse-server {ServerPath} (data {DataPath ?? "temporary"}, http port {HttpPort?.ToString(CultureInfo.InvariantCulture) ?? "free"}, writer password {(WriterPassword is null ? "random" : "set")})");
}

/// <summary>
/// A <c>clickhouse-server</c> process this process started and owns: listening on 127.0.0.1 only (HTTP and native
/// TCP, no interserver port), time zone UTC, data in its own folder, and three users: <c>default</c> without password
/// (tests and local tools), <c>analyst</c> with a read-only profile (<c>readonly = 1</c>: no writes, no DDL, no setting
/// changes, so it cannot lift readonly either), and <c>writer</c>, the platform's account, with a password
/// (<see cref="ClickHouseServerProcessOptions.WriterPassword"/>). users.xml holds password hashes only.
/// Used by tests and by <c>lambda</c> to run a local server. Works with Debian's 18.16 and current servers.
/// </summary>
/// <remarks>Disposing kills the server and deletes a temporary folder; servers still running at process exit are killed.</remarks>
public sealed class ClickHouseServerProcess : IAsyncDisposable
{
    private const int MaxStartAttempts = 3;
    private static readonly ConcurrentDictionary<ClickHouseServerProcess, byte> Running = new();
    private static int exitHookInstalled;

    private readonly Process process;
    private readonly bool ownsFolder;
    private readonly OutputTail output;
    private int disposed;

    private readonly string writerPassword;
    private readonly string analystPassword;

    private ClickHouseServerProcess(Process process, string folder, bool ownsFolder, int httpPort, int tcpPort, OutputTail output, Users users)
    {
        writerPassword = users.WriterPassword;
        analystPassword = users.AnalystPassword;
        this.process = process;
        this.ownsFolder = ownsFolder;
        this.output = output;
        DataPath = folder;
        HttpPort = httpPort;
        TcpPort = tcpPort;
    }

    /// <summary>The address the server listens on: <c>127.0.0.1</c>.</summary>
#pragma warning disable CA1822 // Part of the instance's description next to its ports.
    public string Host => "127.0.0.1";
#pragma warning restore CA1822

    /// <summary>HTTP port.</summary>
    public int HttpPort { get; }

    /// <summary>Native TCP port.</summary>
    public int TcpPort { get; }

    /// <summary>Folder with <c>config.xml</c>, <c>users.xml</c>, <c>data/</c> and <c>log/</c>.</summary>
    public string DataPath { get; }

    /// <summary>Operating-system process id of the server.</summary>
    public int ProcessId => process.Id;

    /// <summary>True once the server process has ended or this object was disposed.</summary>
    public bool HasExited => Volatile.Read(ref disposed) != 0 || process.HasExited;

    /// <summary>Options for <see cref="ServerClickHouse"/> that reach this server as user <c>default</c>.</summary>
    public ClickHouseServerOptions ConnectionOptions => new() { Host = Host, Port = HttpPort };

    /// <summary>Options that reach this server as the read-only user <c>analyst</c>.</summary>
    public ClickHouseServerOptions AnalystConnectionOptions => new() { Host = Host, Port = HttpPort, User = "analyst", Password = analystPassword };

    /// <summary>Options that reach this server as the platform's user <c>writer</c> (with its password).</summary>
    public ClickHouseServerOptions WriterConnectionOptions => new() { Host = Host, Port = HttpPort, User = "writer", Password = writerPassword };

    /// <summary>
    /// Starts the server and waits until it answers <c>/ping</c>. Installs Debian's package first when the
    /// default binary is missing (see <see cref="ClickHouseServerProcessOptions.InstallIfMissing"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="ClickHouseException">The server is missing or did not start; the message quotes its log.</exception>
    public static async Task<ClickHouseServerProcess> StartAsync(ClickHouseServerProcessOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ClickHouseServerProcessOptions();
        options.Validate();
        await EnsureInstalledAsync(options, cancellationToken);

        var users = new Users(options.WriterPassword ?? Convert.ToHexString(RandomNumberGenerator.GetBytes(24)), options.AnalystPassword);
        var ownsFolder = options.DataPath is null;
        var folder = Path.GetFullPath(options.DataPath ?? Path.Combine(Path.GetTempPath(), "lambda-clickhouse-" + Guid.NewGuid().ToString("N")));
        Directory.CreateDirectory(folder);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var (httpPort, tcpPort) = PickPorts(options);
                WriteConfiguration(folder, httpPort, tcpPort, users);
                var server = Launch(options, folder, ownsFolder, httpPort, tcpPort, users);
                try
                {
                    await server.WaitUntilReadyAsync(options.StartTimeout, cancellationToken);
                    return server;
                }
                catch (ClickHouseException e) when (attempt < MaxStartAttempts && options.HttpPort is null && options.TcpPort is null
                    && e.Message.Contains("Address already in use", StringComparison.Ordinal))
                {
                    // Another process took a port between choosing and binding it: try other ports.
                    await server.StopAsync(deleteFolder: false);
                }
                catch
                {
                    await server.StopAsync(deleteFolder: false);
                    throw;
                }
            }
        }
        catch when (ownsFolder)
        {
            TryDeleteFolder(folder);
            throw;
        }
    }

    /// <summary>Kills the server, waits for it to exit, and deletes the folder when it was temporary.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            await StopAsync(ownsFolder);
            process.Dispose();
        }
    }

    private async Task StopAsync(bool deleteFolder)
    {
        Running.TryRemove(this, out _);
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }

        if (deleteFolder)
        {
            TryDeleteFolder(DataPath);
        }
    }

    private async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var ping = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{Host}:{HttpPort}/ping"));
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new ClickHouseException(
                    string.Create(CultureInfo.InvariantCulture, $"clickhouse-server exited with code {process.ExitCode} while starting on {Host}:{HttpPort}. {Diagnostics()}"),
                    null, null, false);
            }

            try
            {
                var body = await http.GetStringAsync(ping, cancellationToken);
                if (body.StartsWith("Ok", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // This ping timed out; the deadline decides.
            }

            if (deadline.Elapsed > timeout)
            {
                throw new ClickHouseException(
                    string.Create(CultureInfo.InvariantCulture, $"clickhouse-server did not answer http://{Host}:{HttpPort}/ping within {timeout}. {Diagnostics()}"),
                    null, null, true);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }
    }

    private string Diagnostics()
    {
        var errorLog = Path.Combine(DataPath, "log", "clickhouse-server.err.log");
        var logTail = File.Exists(errorLog) ? string.Join(" | ", File.ReadLines(errorLog).TakeLast(5)) : string.Empty;
        return $"Output: {output} Error log ({errorLog}): {logTail}";
    }

    private static ClickHouseServerProcess Launch(ClickHouseServerProcessOptions options, string folder, bool ownsFolder, int httpPort, int tcpPort, Users users)
    {
        var start = new ProcessStartInfo(options.ServerPath)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("--config-file=" + Path.Combine(folder, "config.xml"));
        var process = new Process { StartInfo = start };
        var output = new OutputTail();
        process.OutputDataReceived += (_, e) => output.Add(e.Data);
        process.ErrorDataReceived += (_, e) => output.Add(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new ClickHouseException($"Could not start '{options.ServerPath}': {e.Message}", null, null, false, e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ClickHouseServerProcess(process, folder, ownsFolder, httpPort, tcpPort, output, users);
        Running.TryAdd(server, 0);
        if (Interlocked.Exchange(ref exitHookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAllAtExit();
        }

        return server;
    }

    private static void KillAllAtExit()
    {
        foreach (var server in Running.Keys)
        {
            try
            {
                server.process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
        }
    }

    private static (int Http, int Tcp) PickPorts(ClickHouseServerProcessOptions options)
    {
        // Both listeners stay open until both ports are known, so the two differ.
        using var first = new TcpListener(IPAddress.Loopback, 0);
        using var second = new TcpListener(IPAddress.Loopback, 0);
        first.Start();
        second.Start();
        var http = options.HttpPort ?? ((IPEndPoint)first.LocalEndpoint).Port;
        var tcp = options.TcpPort ?? ((IPEndPoint)second.LocalEndpoint).Port;
        first.Stop();
        second.Stop();
        return (http, tcp);
    }

    /// <summary>The passwords of the generated users.</summary>
    private sealed record Users(string WriterPassword, string AnalystPassword)
    {
        public override string ToString() => "users (passwords hidden)";
    }

    private static void WriteConfiguration(string folder, int httpPort, int tcpPort, Users accounts)
    {
        var data = Path.Combine(folder, "data") + Path.DirectorySeparatorChar;
        var log = Path.Combine(folder, "log");
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(log);

        // <yandex> is the root element 18.16 requires; current servers still accept it.
        var config = $"""
            <?xml version="1.0"?>
            <yandex>
                <logger>
                    <level>warning</level>
                    <log>{Xml(Path.Combine(log, "clickhouse-server.log"))}</log>
                    <errorlog>{Xml(Path.Combine(log, "clickhouse-server.err.log"))}</errorlog>
                    <size>10M</size>
                    <count>2</count>
                </logger>
                <listen_host>127.0.0.1</listen_host>
                <http_port>{httpPort.ToString(CultureInfo.InvariantCulture)}</http_port>
                <tcp_port>{tcpPort.ToString(CultureInfo.InvariantCulture)}</tcp_port>
                <max_concurrent_queries>100</max_concurrent_queries>
                <mark_cache_size>268435456</mark_cache_size>
                <uncompressed_cache_size>268435456</uncompressed_cache_size>
                <path>{Xml(data)}</path>
                <tmp_path>{Xml(Path.Combine(data, "tmp") + Path.DirectorySeparatorChar)}</tmp_path>
                <user_files_path>{Xml(Path.Combine(data, "user_files") + Path.DirectorySeparatorChar)}</user_files_path>
                <format_schema_path>{Xml(Path.Combine(data, "format_schemas") + Path.DirectorySeparatorChar)}</format_schema_path>
                <users_config>{Xml(Path.Combine(folder, "users.xml"))}</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <timezone>UTC</timezone>
                <mlock_executable>false</mlock_executable>
            </yandex>
            """;
        var users = $"""
            <?xml version="1.0"?>
            <yandex>
                <profiles>
                    <default>
                        <max_memory_usage>4000000000</max_memory_usage>
                        <load_balancing>random</load_balancing>
                    </default>
                    <readonly>
                        <readonly>1</readonly>
                        <max_memory_usage>4000000000</max_memory_usage>
                        <load_balancing>random</load_balancing>
                    </readonly>
                </profiles>
                <users>
                    <default>
                        <password></password>
                        <networks>
                            <ip>127.0.0.1</ip>
                            <ip>::1</ip>
                        </networks>
                        <profile>default</profile>
                        <quota>default</quota>
                    </default>
                    <analyst>
                        <password_sha256_hex>{Sha256Hex(accounts.AnalystPassword)}</password_sha256_hex>
                        <networks>
                            <ip>127.0.0.1</ip>
                            <ip>::1</ip>
                        </networks>
                        <profile>readonly</profile>
                        <quota>default</quota>
                    </analyst>
                    <writer>
                        <password_sha256_hex>{Sha256Hex(accounts.WriterPassword)}</password_sha256_hex>
                        <networks>
                            <ip>127.0.0.1</ip>
                            <ip>::1</ip>
                        </networks>
                        <profile>default</profile>
                        <quota>default</quota>
                    </writer>
                </users>
                <quotas>
                    <default>
                        <interval>
                            <duration>3600</duration>
                            <queries>0</queries>
                            <errors>0</errors>
                            <result_rows>0</result_rows>
                            <read_rows>0</read_rows>
                            <execution_time>0</execution_time>
                        </interval>
                    </default>
                </quotas>
            </yandex>
            """;
        File.WriteAllText(Path.Combine(folder, "config.xml"), config);
        File.WriteAllText(Path.Combine(folder, "users.xml"), users);

        static string Xml(string value) => SecurityElement.Escape(value);
        static string Sha256Hex(string password) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(password)));
    }

    private static async Task EnsureInstalledAsync(ClickHouseServerProcessOptions options, CancellationToken cancellationToken)
    {
        if (File.Exists(options.ServerPath))
        {
            return;
        }

        if (!options.InstallIfMissing || !string.Equals(options.ServerPath, ClickHouseServerProcessOptions.DefaultServerPath, StringComparison.Ordinal))
        {
            throw new ClickHouseException($"clickhouse-server not found at '{options.ServerPath}'.", null, null, false);
        }

        var install = await RunAsync("apt-get", ["install", "-y", "clickhouse-server"], cancellationToken);
        if (install.ExitCode != 0)
        {
            // The package lists may be missing or stale on a fresh machine.
            await RunAsync("apt-get", ["update"], cancellationToken);
            install = await RunAsync("apt-get", ["install", "-y", "clickhouse-server"], cancellationToken);
        }

        if (install.ExitCode != 0 || !File.Exists(options.ServerPath))
        {
            throw new ClickHouseException(
                string.Create(CultureInfo.InvariantCulture, $"clickhouse-server is missing at '{options.ServerPath}' and `apt-get install -y clickhouse-server` failed (exit code {install.ExitCode}): {install.Output}"),
                null, null, false);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, string[] arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start) ?? throw new ClickHouseException($"Could not start {program}.", null, null, false);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var text = (await stdout) + (await stderr);
        return (process.ExitCode, text.Length > 2000 ? text[^2000..] : text);
    }

    private static void TryDeleteFolder(string folder)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                if (Directory.Exists(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }

                return;
            }
            catch (IOException)
            {
                // A file may still be closing right after the kill; try again.
            }
            catch (UnauthorizedAccessException)
            {
                return;
            }
        }
    }

    /// <summary>The last lines the server printed, for error messages.</summary>
    private sealed class OutputTail
    {
        private readonly Queue<string> lines = new();

        public void Add(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (lines)
            {
                lines.Enqueue(line);
                if (lines.Count > 20)
                {
                    lines.Dequeue();
                }
            }
        }

        public override string ToString()
        {
            lock (lines)
            {
                return string.Join(" | ", lines);
            }
        }
    }
}
