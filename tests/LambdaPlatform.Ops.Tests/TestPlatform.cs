using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.Hosting;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Serving.Security;
using Microsoft.Extensions.DependencyInjection;

namespace LambdaPlatform.Ops.Tests;

/// <summary>
/// <c>lambda up</c> on embedded defaults (dev broker, chDB in a temporary folder) for one test class, with an HTTP client (that
/// sends the key when keys are configured) and a raw Kafka producer (so a test can set a record's headers itself).
/// </summary>
public sealed class TestPlatform : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    private readonly string _data;
    private readonly IProducer<byte[]?, byte[]> _producer;

    private TestPlatform(PlatformHost host, string data, string? key)
    {
        Host = host;
        _data = data;
        Http = new HttpClient { BaseAddress = new Uri(host.Endpoints.Http), Timeout = TimeSpan.FromMinutes(2) };
        if (key is not null)
        {
            Http.DefaultRequestHeaders.Add(ApiKeyAuthentication.HeaderName, key);
        }

        _producer = new ProducerBuilder<byte[]?, byte[]>(KafkaDefaults.ProducerConfig(host.Endpoints.Kafka)).Build();
    }

    public PlatformHost Host { get; }

    public HttpClient Http { get; }

    public string BaseUrl => Host.Endpoints.Http;

    public static async Task<TestPlatform> StartAsync(string? apiKey = null, TelemetryOptions? telemetry = null, Action<IServiceCollection>? configure = null)
    {
        var data = Path.Combine(Path.GetTempPath(), "lambda-ops-" + Guid.NewGuid().ToString("N"));
        var host = await PlatformHost.StartAsync(new UpOptions
        {
            DataDirectory = data,
            Http = "127.0.0.1:" + FreePort(),
            Partitions = 2,
            ApiKeys = apiKey is null ? ApiKeys.None : ApiKeys.From([apiKey]),
            Telemetry = telemetry ?? new TelemetryOptions { Role = "up" },
        }, configure);
        return new TestPlatform(host, data, apiKey);
    }

    /// <summary>Sends records to the events topic (keyed by nothing), with <paramref name="headers"/> when given, and waits for every acknowledgement.</summary>
    public void Produce(IEnumerable<byte[]> values, Headers? headers = null)
    {
        var failed = 0;
        foreach (var value in values)
        {
            _producer.Produce(Topics.Events, new Message<byte[]?, byte[]> { Value = value, Headers = headers }, r =>
            {
                if (r.Error.IsError)
                {
                    Interlocked.Increment(ref failed);
                }
            });
        }

        _producer.Flush(TimeSpan.FromSeconds(30));
        Assert.Equal(0, failed);
    }

    /// <summary><paramref name="count"/> valid checkouts at <paramref name="start"/> + i × <paramref name="spacing"/>.</summary>
    public static List<byte[]> Checkouts(int count, DateTime start, TimeSpan spacing, int seed = 5)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = seed, Users = 300 });
        return [.. Enumerable.Range(0, count).Select(i => generator.Next("user.action.checkout", start + spacing * i).Json)];
    }

    public async Task<string> SqlAsync(string sql)
    {
        using var response = await Http.PostAsJsonAsync("/v1/sql", new { sql, format = "TabSeparated" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadAsStringAsync()).Trim();
    }

    public async Task<List<JsonElement>> BatchRunAsync(object request)
    {
        using var response = await Http.PostAsJsonAsync("/v1/batch/run", request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return [.. JsonDocument.Parse(body).RootElement.GetProperty("results").EnumerateArray().Select(r => r.Clone())];
    }

    public async Task<JsonElement> GetJsonAsync(string path) => JsonDocument.Parse(await Http.GetStringAsync(path)).RootElement.Clone();

    public static async Task PollAsync(Func<Task<bool>> condition, string what, TimeSpan? deadline = null)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(stopwatch.Elapsed < (deadline ?? Deadline), "not before the deadline: " + what);
            await Task.Delay(500);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    public async ValueTask DisposeAsync()
    {
        _producer.Dispose();
        Http.Dispose();
        await Host.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // A temporary folder.
        }
    }
}
