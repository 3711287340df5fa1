using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;

namespace LambdaPlatform.Cli.Tests;

/// <summary>
/// A real `lambda up` in its own process (this test process already holds chDB on another data folder), with API keys
/// from the environment (<c>LAMBDA_API_KEYS</c>) and from a keys file (<c>--api-keys-file</c>). Its output is kept, to
/// check that no key is ever written there.
/// </summary>
public sealed class SecuredPlatformFixture : IAsyncLifetime
{
    public const string EnvironmentKey = "env-key-0123456789-abcdefghij";

    public const string FileKey = "file-key-9876543210-zyxwvutsrq";

    private readonly ConcurrentQueue<string> _output = new();
    private Process _process = null!;

    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "lambda-up-secured-" + Guid.NewGuid().ToString("N"));

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Everything the process printed so far.</summary>
    public string Output => string.Join('\n', _output);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(DataDirectory);
        var keysFile = Path.Combine(DataDirectory, "api-keys");
        await File.WriteAllTextAsync(keysFile, $"# keys of the test platform\n\n{FileKey}\n");
        var http = "127.0.0.1:" + PlatformFixture.FreePort();
        BaseAddress = new Uri("http://" + http);
        _process = Start(["up", "--data", Path.Combine(DataDirectory, "data"), "--http", http, "--partitions", "1", "--api-keys-file", keysFile],
            new Dictionary<string, string> { ["LAMBDA_API_KEYS"] = EnvironmentKey });
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var stopwatch = Stopwatch.StartNew();
        while (!Output.Contains("LambdaPlatform is up.", StringComparison.Ordinal))
        {
            if (_process.HasExited || stopwatch.Elapsed > TimeSpan.FromMinutes(3))
            {
                throw new InvalidOperationException("lambda up did not come up:\n" + Output);
            }

            await Task.Delay(200);
        }
    }

    public async Task DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
        Directory.Delete(DataDirectory, recursive: true);
    }

    /// <summary>A client for the API, sending <paramref name="key"/> as a bearer token when given.</summary>
    public HttpClient Client(string? key = null)
    {
        var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = BaseAddress };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    /// <summary>Runs the `lambda` tool in a child process with <paramref name="environment"/> added, and waits for it.</summary>
    public static async Task<(int Code, string Out, string Err)> RunLambdaAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(args, environment);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    internal static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "lambda.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment.Remove("LAMBDA_API_KEYS");
        start.Environment.Remove("LAMBDA_API_KEY");
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("cannot start lambda");
    }

    private static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet")
        {
            return current;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SecuredPlatformCollection : ICollectionFixture<SecuredPlatformFixture>
{
    public const string Name = "secured-platform";
}
