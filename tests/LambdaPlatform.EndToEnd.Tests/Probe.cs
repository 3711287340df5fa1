using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using LambdaPlatform.ClickHouse;

namespace LambdaPlatform.EndToEnd.Tests;

/// <summary>What the end-to-end tests ask of a running platform: queries, polls with a deadline, a free port.</summary>
internal static class Probe
{
    public static async Task<List<string[]>> QueryAsync(IClickHouse clickHouse, string sql)
    {
        await using var stream = await clickHouse.QueryAsync(sql, "TabSeparated");
        using var reader = new StreamReader(stream);
        return [.. (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))];
    }

    public static async Task<long> ScalarAsync(IClickHouse clickHouse, string sql)
    {
        var rows = await QueryAsync(clickHouse, sql);
        return rows.Count == 0 || rows[0][0] is "" or "\\N" ? 0 : long.Parse(rows[0][0], CultureInfo.InvariantCulture);
    }

    public static async Task PollAsync(Func<Task<bool>> condition, TimeSpan deadline)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(stopwatch.Elapsed < deadline, "condition not met before the deadline");
            await Task.Delay(250);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string Iso(DateTime time) => time.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
