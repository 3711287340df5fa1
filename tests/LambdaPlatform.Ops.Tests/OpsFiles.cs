using System.Text.Json;
using System.Text.RegularExpressions;

namespace LambdaPlatform.Ops.Tests;

/// <summary>The shipped operations files, and the metric names their PromQL reads.</summary>
internal static partial class OpsFiles
{
    public static string Root { get; } = FindRoot();

    public static string RulesFile => Path.Combine(Root, "ops", "prometheus", "lambda.rules.yml");

    public static string RulesTestFile => Path.Combine(Root, "ops", "prometheus", "lambda.rules.test.yml");

    public static string DashboardFile => Path.Combine(Root, "ops", "grafana", "lambda-platform.json");

    /// <summary>The <c>expr</c> of every rule in the rules file (block scalars included).</summary>
    public static List<string> RuleExpressions()
    {
        var lines = File.ReadAllLines(RulesFile);
        var expressions = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var match = ExprLine().Match(lines[i]);
            if (!match.Success)
            {
                continue;
            }

            if (match.Groups[2].Value is "|" or ">")
            {
                var indent = match.Groups[1].Value.Length;
                var block = new List<string>();
                while (i + 1 < lines.Length && (lines[i + 1].Trim().Length == 0 || lines[i + 1].TakeWhile(c => c == ' ').Count() > indent))
                {
                    block.Add(lines[++i]);
                }

                expressions.Add(string.Join('\n', block));
            }
            else
            {
                expressions.Add(match.Groups[2].Value);
            }
        }

        return expressions;
    }

    /// <summary>The names of the recording rules (series the rules create, which dashboards may read).</summary>
    public static HashSet<string> RecordedNames() =>
        [.. File.ReadAllLines(RulesFile).Select(l => RecordLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value)];

    /// <summary>The <c>expr</c> of every target of every panel of the dashboard, rows included.</summary>
    public static List<(string Panel, string Expr)> DashboardExpressions(JsonElement dashboard)
    {
        var result = new List<(string, string)>();
        foreach (var panel in Panels(dashboard))
        {
            if (panel.TryGetProperty("targets", out var targets))
            {
                foreach (var target in targets.EnumerateArray())
                {
                    result.Add((panel.GetProperty("title").GetString()!, target.GetProperty("expr").GetString()!));
                }
            }
        }

        return result;
    }

    /// <summary>Every panel, those inside collapsed rows too.</summary>
    public static IEnumerable<JsonElement> Panels(JsonElement dashboard)
    {
        foreach (var panel in dashboard.GetProperty("panels").EnumerateArray())
        {
            yield return panel;
            if (panel.TryGetProperty("panels", out var inner))
            {
                foreach (var p in inner.EnumerateArray())
                {
                    yield return p;
                }
            }
        }
    }

    /// <summary>
    /// The metric (and recorded series) names a PromQL expression reads: identifiers left after removing strings, label
    /// matchers, ranges, label lists of by/without/on/ignoring/group_*, function calls, keywords and numbers.
    /// </summary>
    public static HashSet<string> MetricNames(string expr)
    {
        var text = Strings().Replace(expr, " ");
        text = Matchers().Replace(text, " ");
        text = Ranges().Replace(text, " ");
        text = LabelLists().Replace(text, " ");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in Identifiers().Matches(text))
        {
            var rest = text[(m.Index + m.Length)..].TrimStart();
            if (!rest.StartsWith('(') && !Keywords.Contains(m.Value))
            {
                names.Add(m.Value);
            }
        }

        return names;
    }

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN",
    };

    [GeneratedRegex(@"^(\s*-?\s*)expr:\s*(.*?)\s*$")]
    private static partial Regex ExprLine();

    [GeneratedRegex(@"^\s*-\s*record:\s*(\S+)\s*$")]
    private static partial Regex RecordLine();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex Strings();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Matchers();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Ranges();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex LabelLists();

    [GeneratedRegex(@"(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifiers();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ops", "prometheus", "lambda.rules.yml")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("ops/prometheus/lambda.rules.yml not found above " + AppContext.BaseDirectory);
    }
}
