using System.CommandLine;
using System.Net.Http.Json;
using System.Text.Json;
using LambdaPlatform.Cli.Hosting;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Serving;

namespace LambdaPlatform.Cli.Commands;

/// <summary>
/// <c>lambda sql "SELECT ..."</c>: read-only SQL against the serving ClickHouse of a running <c>lambda up</c>, through
/// <c>POST /v1/sql</c>; or, when <c>LAMBDA_CLICKHOUSE</c> holds a connection string (and no <c>--url</c> is given),
/// straight against that ClickHouse server, with the same read-only checks and <c>readonly = 1</c>. Secrets come from
/// the environment only (<c>LAMBDA_API_KEY</c>, <c>LAMBDA_CLICKHOUSE_PASSWORD</c>), never from the command line.
/// </summary>
public static class SqlCommand
{
    /// <summary>Environment variable with the API key that <c>lambda sql</c> sends: <c>LAMBDA_API_KEY</c>.</summary>
    public const string ApiKeyVariable = "LAMBDA_API_KEY";

    /// <summary>Environment variable with a ClickHouse server connection string to query directly: <c>LAMBDA_CLICKHOUSE</c>.</summary>
    public const string ClickHouseVariable = ServerConnection.Variable;

    /// <summary>Environment variable with the password for <see cref="ClickHouseVariable"/> when its connection string has none: <c>LAMBDA_CLICKHOUSE_PASSWORD</c>.</summary>
    public const string ClickHousePasswordVariable = ServerConnection.PasswordVariable;

    /// <summary>Builds the command.</summary>
    public static Command Create(TextWriter stdout)
    {
        var sql = new Argument<string>("sql") { Description = "One read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN)" };
        var format = new Option<string>("--format") { Description = "ClickHouse output format", DefaultValueFactory = _ => "PrettyCompactMonoBlock" };
        var url = new Option<string?>("--url") { Description = "HTTP address of the platform (default: from the running `lambda up`)" };
        var data = new Option<string>("--data") { Description = "Data folder of the running `lambda up`", DefaultValueFactory = _ => ".lambda" };
        var command = new Command("sql", $"Run read-only SQL on the serving ClickHouse and print the result (API key, when required: env {ApiKeyVariable})") { sql, format, url, data };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (result.GetValue(url) is null && Environment.GetEnvironmentVariable(ClickHouseVariable) is { Length: > 0 } connectionString)
            {
                await QueryServerAsync(ServerConnection.Options(connectionString, ClickHouseVariable), result.GetValue(sql)!, result.GetValue(format)!, stdout, cancellationToken);
                return 0;
            }

            // A configured ClickHouse server (--config or LAMBDA_CONFIG), as its read-only user when there is one.
            if (result.GetValue(url) is null && CliSettings.Load(result).ClickHouse is { IsConfigured: true } configured)
            {
                await QueryServerAsync((configured.Reader() ?? configured.Writer())!, result.GetValue(sql)!, result.GetValue(format)!, stdout, cancellationToken);
                return 0;
            }

            var baseUrl = result.GetValue(url) ?? (await Endpoints.ReadAsync(result.GetValue(data)!, cancellationToken)).Http;
            if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
            {
                throw new CliException($"--url: '{baseUrl}' is not an http(s) address");
            }

            using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(5) };

            // From the environment only, so the key is not in the process list or the shell history.
            if (Environment.GetEnvironmentVariable(ApiKeyVariable) is { Length: > 0 } key)
            {
                if (!System.Net.Http.Headers.AuthenticationHeaderValue.TryParse("Bearer " + key.Trim(), out var authorization))
                {
                    throw new CliException($"{ApiKeyVariable} is not a valid API key");
                }

                http.DefaultRequestHeaders.Authorization = authorization;
            }

            using var response = await http.PostAsJsonAsync("/v1/sql", new { sql = result.GetValue(sql), format = result.GetValue(format) }, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new CliException(ProblemText(body) ?? $"HTTP {(int)response.StatusCode}: {body}");
            }

            await stdout.WriteAsync(body);
            return 0;
        });
        return command;
    }

    private static async Task QueryServerAsync(ClickHouseServerOptions options, string sql, string format, TextWriter stdout, CancellationToken cancellationToken)
    {
        if (ReadOnlySql.Check(sql) is { } refusal)
        {
            throw new CliException($"invalid 'sql': {refusal}");
        }

        await using var server = new ServerClickHouse(options);
        await using var body = await server.QueryAsync(ReadOnlySql.Enforce(sql), format, cancellationToken);
        using var reader = new StreamReader(body);
        await stdout.WriteAsync(await reader.ReadToEndAsync(cancellationToken));
    }

    private static string? ProblemText(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            var title = root.TryGetProperty("title", out var t) ? t.GetString() : null;
            var detail = root.TryGetProperty("detail", out var d) ? d.GetString() : null;
            return detail is null ? title : $"{title}: {detail.Split('\n')[0]}";
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
