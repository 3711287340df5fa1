using System.Diagnostics;
using System.Text;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Cli.Tests;

/// <summary>Broken files, views and schemas, shared by the cases (created once, under a GUID-named folder).</summary>
public sealed class BadInputFiles : IDisposable
{
    /// <summary>Creates the files.</summary>
    public BadInputFiles()
    {
        Root = Path.Combine(Path.GetTempPath(), "lambda-badinput-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        var valid = Encoding.UTF8.GetString(new EventGenerator().Next(DateTime.UtcNow).Json);
        Write("ok.jsonl", valid + "\n");
        Write("malformed.jsonl", valid + "\n\n{\"eventId\": \"x\",\n" + valid + "\n");
        File.WriteAllBytes(Path.Combine(Root, "bad-utf8.jsonl"), [.. Encoding.UTF8.GetBytes(valid + "\n{\"userId\":\""), 0xFF, .. "\"}\n"u8]);
        Write("two-values.jsonl", valid + " " + valid + "\n");
        Write("corrupt-endpoints/endpoints.json", "{\"kafka\": \"127.0.0.1:9092\",\n  \"http\": ");
        Write("empty-endpoints/endpoints.json", "{}");
        Write("a-file", "not a folder");
        Directory.CreateDirectory(Path.Combine(Root, "no-views"));

        var view = File.ReadAllText(Path.Combine(ViewsShipped, "checkout_revenue.yaml"));
        Write("views-syntax/checkout_revenue.yaml", view.Replace("  orders: count", "  orders: [count", StringComparison.Ordinal));
        Write("views-measure/checkout_revenue.yaml", view.Replace("  orders: count", "  orders: median(payload.cartValue)", StringComparison.Ordinal));
        Write("views-field/checkout_revenue.yaml", view.Replace("bucket: 1m", "bucket: 1m\nwindow: 5m", StringComparison.Ordinal));
        Write("views-duration/checkout_revenue.yaml", view.Replace("allowedLateness: 1h", "allowedLateness: 1 fortnight", StringComparison.Ordinal));
        Write("views-path/checkout_revenue.yaml", view.Replace("store: payload.location", "store: payload.shop", StringComparison.Ordinal));

        // A schemas folder whose checkout schema is cut off in the middle (for LAMBDA_SCHEMAS).
        CopyFolder(Path.GetDirectoryName(ViewsShipped)!, Path.Combine(Root, "schemas-broken"));
        var checkout = Path.Combine(Root, "schemas-broken", "events", "user.action.checkout", "v1.schema.json");
        File.WriteAllText(checkout, File.ReadAllText(checkout)[..200]);
    }

    /// <summary>The folder holding everything.</summary>
    public string Root { get; }

    private static string ViewsShipped => Schemas.Views.ViewLoader.DefaultDirectory();

    /// <summary>The full path of a name under <see cref="Root"/>.</summary>
    public string this[string name] => Path.Combine(Root, name);

    private void Write(string name, string text)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        }

        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
        }
    }

    /// <inheritdoc />
    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>
/// Every mistake a user can make on the command line, in a view definition, an event schema, a data folder or a
/// connection string gives one clear line on stderr that names the place (option, file and line, field), exit code 2
/// for usage errors (1 when a server cannot be reached), and no stack trace. Runs the real tool.
/// </summary>
public sealed class BadInputMessageTests(BadInputFiles files) : IClassFixture<BadInputFiles>
{
    private const int Usage = LambdaCli.UsageError;
    private const int Failure = LambdaCli.Failure;

    /// <summary>Case name → (arguments with {name} standing for a file of <see cref="BadInputFiles"/>, exit code, texts stderr must contain).</summary>
    private static readonly Dictionary<string, (string[] Args, int Code, string[] Place)> Cases = new()
    {
        ["misspelled option"] = (["up", "--partition", "4"], Usage, ["'--partition'"]),
        ["unknown subcommand"] = (["batch", "rerun"], Usage, ["'rerun'"]),
        ["missing option value"] = (["speed", "--clickhouse", "Host=127.0.0.1", "--kafka"], Usage, ["--kafka"]),
        ["port out of range"] = (["dev-broker", "--port", "70000"], Usage, ["--port", "70000"]),
        ["port not a number"] = (["dev-broker", "--port", "ninety"], Usage, ["--port", "ninety"]),
        ["ports run past 65535"] = (["dev-broker", "--port", "65535", "--brokers", "2"], Usage, ["--port", "65536"]),
        ["no brokers"] = (["dev-broker", "--brokers", "0"], Usage, ["--brokers"]),
        ["zero partitions"] = (["dev-broker", "--partitions", "0"], Usage, ["--partitions"]),
        ["partitions not a number"] = (["up", "--partitions", "many"], Usage, ["--partitions", "many"]),
        ["too many partitions"] = (["up", "--partitions", "100000"], Usage, ["--partitions", "100000"]),
        ["negative rate"] = (["up", "--rate", "-5"], Usage, ["--rate", "-5"]),
        ["kafka port zero"] = (["up", "--kafka-port", "0"], Usage, ["--kafka-port"]),
        ["http not host:port"] = (["up", "--http", "nonsense"], Usage, ["--http", "nonsense"]),
        ["http port out of range"] = (["up", "--http", "127.0.0.1:99999"], Usage, ["--http", "99999"]),
        ["data is a file"] = (["up", "--data", "{a-file}"], Usage, ["--data", "a-file"]),
        ["day not in the calendar"] = (["batch", "run", "--day", "2026-02-30"], Usage, ["--day", "2026-02-30"]),
        ["day in another format"] = (["batch", "run", "--day", "28.11.2026"], Usage, ["--day"]),
        ["file is a folder"] = (["produce", "--file", "{no-views}", "--kafka", "127.0.0.1:9"], Usage, ["--file", "is a folder"]),
        ["malformed json line"] = (["produce", "--file", "{malformed.jsonl}", "--kafka", "127.0.0.1:9"], Usage, ["malformed.jsonl:3:"]),
        ["invalid utf-8 line"] = (["produce", "--file", "{bad-utf8.jsonl}", "--kafka", "127.0.0.1:9"], Usage, ["bad-utf8.jsonl:2:", "UTF-8"]),
        ["two events on a line"] = (["produce", "--file", "{two-values.jsonl}", "--kafka", "127.0.0.1:9"], Usage, ["two-values.jsonl:1:"]),
        ["kafka without port"] = (["produce", "--file", "{ok.jsonl}", "--kafka", "127.0.0.1"], Usage, ["--kafka", "127.0.0.1"]),
        ["kafka empty"] = (["produce", "--file", "{ok.jsonl}", "--kafka", ""], Usage, ["--kafka"]),
        ["kafka unreachable"] = (["produce", "--file", "{ok.jsonl}", "--kafka", "127.0.0.1:9"], Failure, ["127.0.0.1:9"]),
        ["corrupt endpoints.json (produce)"] = (["produce", "--file", "{ok.jsonl}", "--data", "{corrupt-endpoints}"], Usage, ["corrupt-endpoints/endpoints.json"]),
        ["endpoints.json without kafka"] = (["produce", "--file", "{ok.jsonl}", "--data", "{empty-endpoints}"], Usage, ["empty-endpoints/endpoints.json", "kafka"]),
        ["corrupt endpoints.json (sql)"] = (["sql", "SELECT 1", "--data", "{corrupt-endpoints}"], Usage, ["corrupt-endpoints/endpoints.json"]),
        ["endpoints.json without http (sql)"] = (["sql", "SELECT 1", "--data", "{empty-endpoints}"], Usage, ["empty-endpoints/endpoints.json", "\"kafka\" and \"http\" are missing"]),
        ["broken view, clickhouse unreachable (speed)"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1;Port=9", "--views", "{views-measure}"], Usage, ["views-measure/checkout_revenue.yaml", "line 10"]),
        ["url not http"] = (["sql", "SELECT 1", "--url", "ftp://example"], Usage, ["--url", "ftp://example"]),
        ["connection string garbage"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "garbage"], Usage, ["--clickhouse"]),
        ["connection string port text"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1;Port=abc"], Usage, ["--clickhouse", "port", "abc"]),
        ["connection string port range"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1;Port=99999"], Usage, ["--clickhouse", "99999"]),
        ["connection string protocol"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1;Protocol=ftp"], Usage, ["--clickhouse", "ftp"]),
        ["connection string unknown key"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1;Colour=blue"], Usage, ["--clickhouse", "colour"]),
        ["kafka empty (speed)"] = (["speed", "--kafka", "", "--clickhouse", "Host=127.0.0.1"], Usage, ["--kafka"]),
        ["empty group"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1", "--group", " "], Usage, ["--group"]),
        ["views folder missing"] = (["speed", "--kafka", "127.0.0.1:9", "--clickhouse", "Host=127.0.0.1", "--views", "{nope}"], Usage, ["--views", "nope"]),
        ["views is a file"] = (["up", "--views", "{a-file}", "--data", "{data}"], Usage, ["--views", "a-file"]),
        ["views folder empty"] = (["up", "--views", "{no-views}", "--data", "{data}"], Usage, ["no-views", "no view definitions"]),
        ["view yaml syntax"] = (["up", "--views", "{views-syntax}", "--data", "{data}"], Usage, ["views-syntax/checkout_revenue.yaml", "line "]),
        ["view unknown measure"] = (["up", "--views", "{views-measure}", "--data", "{data}"], Usage, ["views-measure/checkout_revenue.yaml", "line 10", "median"]),
        ["view unknown field"] = (["up", "--views", "{views-field}", "--data", "{data}"], Usage, ["views-field/checkout_revenue.yaml", "line ", "window"]),
        ["view bad duration"] = (["up", "--views", "{views-duration}", "--data", "{data}"], Usage, ["views-duration/checkout_revenue.yaml", "line 6", "fortnight"]),
        ["view unknown path"] = (["up", "--views", "{views-path}", "--data", "{data}"], Usage, ["views-path/checkout_revenue.yaml", "line 8", "payload.shop"]),
    };

    /// <summary>The case names, for the theory.</summary>
    public static TheoryData<string> Names => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public async Task Run_NamesThePlaceOnOneLine_WithoutStackTrace(string name)
    {
        var (args, code, place) = Cases[name];
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        // A safety net only (a mistake that is not caught would start a platform and wait for Ctrl-C).
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var exit = await LambdaCli.RunAsync([.. args.Select(Resolve)], stdout, stderr, cancel.Token);

        AssertOneClearLine(stderr.ToString(), code, exit, place);
    }

    [Fact]
    public async Task Up_NamesTheSchemaFile_WhenAnEventSchemaIsBroken()
    {
        var (exit, err) = await RunToolAsync(files["schemas-broken"], "up", "--data", Resolve("{data}"));
        AssertOneClearLine(err, Usage, exit, ["schemas-broken/events/user.action.checkout/v1.schema.json", "line "]);
    }

    [Fact]
    public async Task Up_NamesTheVariable_WhenTheSchemasFolderHasNoEvents()
    {
        var (exit, err) = await RunToolAsync(files["no-views"], "up", "--data", Resolve("{data}"));
        AssertOneClearLine(err, Usage, exit, [EventSchemaRegistry.DirectoryVariable, "no-views"]);
    }

    [Fact]
    public async Task Produce_SendsEveryLine_WhenTheFileIsWellFormed_EvenEventsTheSchemasReject()
    {
        // CRLF line endings, blank lines, and a well-formed event the speed layer will dead-letter: all fine for produce.
        var generator = new EventGenerator();
        var lines = new[]
        {
            Encoding.UTF8.GetString(generator.Next(DateTime.UtcNow).Json),
            string.Empty,
            "{\"eventId\": \"not-a-uuid\"}",
            Encoding.UTF8.GetString(generator.Next(DateTime.UtcNow).Json),
        };
        var path = files["good-" + Guid.NewGuid().ToString("N")[..8] + ".jsonl"];
        await File.WriteAllTextAsync(path, string.Join("\r\n", lines) + "\r\n");
        await using var broker = Dev.Kafka.DevBroker.Start(new Dev.Kafka.DevBrokerOptions { Topics = [new Dev.Kafka.DevBrokerTopic(Kafka.Topics.Events, 2)] });
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var exit = await LambdaCli.RunAsync(["produce", "--file", path, "--kafka", broker.BootstrapServers], stdout, stderr);

        Assert.True(exit == 0, stderr.ToString());
        Assert.Contains($"sent 3 events to {broker.BootstrapServers}", stdout.ToString(), StringComparison.Ordinal);
    }

    private static void AssertOneClearLine(string err, int expectedCode, int exit, string[] place)
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got {lines.Length}:\n{err}");
        Assert.StartsWith("lambda: ", lines[0], StringComparison.Ordinal);
        foreach (var text in place)
        {
            Assert.Contains(text, lines[0], StringComparison.OrdinalIgnoreCase);
        }

        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", err, StringComparison.Ordinal);
        Assert.True(expectedCode == exit, $"exit code {exit}, expected {expectedCode}: {err}");
    }

    private string Resolve(string arg) =>
        arg.Length > 2 && arg[0] == '{' && arg[^1] == '}' ? files[arg[1..^1]] : arg;

    /// <summary>Runs the built <c>lambda</c> as a child process with <c>LAMBDA_SCHEMAS</c> set (the variable is process-wide).</summary>
    private static async Task<(int Exit, string Err)> RunToolAsync(string schemas, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "lambda.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment[EventSchemaRegistry.DirectoryVariable] = schemas;
        using var process = Process.Start(start)!;
        var err = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }

        await output;
        return (process.ExitCode, await err);
    }
}
