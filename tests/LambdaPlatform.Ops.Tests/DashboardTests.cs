using System.Text.Json;

namespace LambdaPlatform.Ops.Tests;

/// <summary>The shipped Grafana dashboard is well-formed: JSON, importable shape, every panel queries Prometheus.</summary>
public sealed class DashboardTests
{
    [Fact]
    public void Dashboard_IsAGrafanaDashboard_WhosePanelsEachQueryThePrometheusDatasource()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(OpsFiles.DashboardFile));
        var dashboard = doc.RootElement;
        Assert.Equal("lambda-platform", dashboard.GetProperty("uid").GetString());
        Assert.False(string.IsNullOrWhiteSpace(dashboard.GetProperty("title").GetString()));
        Assert.True(dashboard.GetProperty("schemaVersion").GetInt32() >= 36);
        var variable = Assert.Single(dashboard.GetProperty("templating").GetProperty("list").EnumerateArray());
        Assert.Equal(("datasource", "datasource", "prometheus"), (variable.GetProperty("name").GetString(), variable.GetProperty("type").GetString(), variable.GetProperty("query").GetString()));

        var panels = OpsFiles.Panels(dashboard).ToList();
        Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        foreach (var panel in panels)
        {
            var title = panel.GetProperty("title").GetString()!;
            var grid = panel.GetProperty("gridPos");
            Assert.True(grid.GetProperty("x").GetInt32() + grid.GetProperty("w").GetInt32() <= 24, title + ": wider than the grid");
            if (panel.GetProperty("type").GetString() == "row")
            {
                continue;
            }

            Assert.Contains(panel.GetProperty("type").GetString(), new[] { "timeseries", "stat" });
            Assert.Equal("${datasource}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            var targets = panel.GetProperty("targets").EnumerateArray().ToList();
            Assert.NotEmpty(targets);
            Assert.All(targets, t => Assert.False(string.IsNullOrWhiteSpace(t.GetProperty("expr").GetString()), title + ": empty query"));
            Assert.Equal(targets.Count, targets.Select(t => t.GetProperty("refId").GetString()).Distinct().Count());
        }

        // What the issue asks the dashboard to show.
        var titles = string.Join(" | ", panels.Select(p => p.GetProperty("title").GetString()));
        foreach (var topic in new[] { "Speed lag", "Dead letters", "failed flushes", "batch run", "W holds", "relative error", "API latency" })
        {
            Assert.Contains(topic, titles, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void MetricNames_FindsTheSeriesAnExpressionReads()
    {
        Assert.Equal(["lambda_speed_invalid_total", "lambda_speed_events_in_total"],
            OpsFiles.MetricNames("sum by (rule) (rate(lambda_speed_invalid_total{rule=~\"a|b\"}[5m])) / ignoring (rule) group_left sum(rate(lambda_speed_events_in_total[$__rate_interval])) > 0.01"));
        Assert.Equal(["api:http_server_request_duration_seconds:quantile_rate5m"],
            OpsFiles.MetricNames("api:http_server_request_duration_seconds:quantile_rate5m{quantile=\"0.99\"}"));
        Assert.Equal(["lambda_batch_last_success_timestamp_seconds"], OpsFiles.MetricNames("time() - max by (view) (lambda_batch_last_success_timestamp_seconds) > 3 * 3600"));
        Assert.Equal(["http_server_request_duration_seconds_bucket"],
            OpsFiles.MetricNames("histogram_quantile(0.999, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{http_route=~\"/v1/.*\"}[5m])))"));
    }
}
