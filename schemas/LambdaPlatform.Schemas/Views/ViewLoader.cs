using System.Globalization;
using System.Text.RegularExpressions;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;
using LambdaPlatform.Schemas.Views.Measures;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// Reads view definitions (YAML) and checks them against the event schemas: unknown fields, unknown
/// paths, wrong types, duplicate names and bad values each fail with a <see cref="SchemaLoadException"/>
/// naming the file, the line and column, and the field.
/// </summary>
public static partial class ViewLoader
{
    private static readonly HashSet<string> TopLevelKeys = new(StringComparer.Ordinal)
    {
        "view", "description", "events", "filter", "bucket", "allowedLateness", "dimensions", "measures", "batch",
    };

    /// <summary>Finds <c>schemas/views</c> next to the program or above the current directory.</summary>
    public static string DefaultDirectory() => Path.Combine(Path.GetDirectoryName(EventSchemaRegistry.DefaultDirectory())!, "views");

    /// <summary>Loads every <c>*.yaml</c>/<c>*.yml</c>/<c>*.json</c> view in <paramref name="directory"/>.</summary>
    /// <exception cref="SchemaLoadException">A definition is wrong, two share a name, or there is none.</exception>
    public static IReadOnlyList<ViewDefinition> LoadAll(string directory, EventSchemaRegistry schemas)
    {
        if (!Directory.Exists(directory))
        {
            throw new SchemaLoadException(directory, "#", "view folder not found");
        }

        var views = new List<ViewDefinition>();
        foreach (var file in Directory.EnumerateFiles(directory).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var view = Load(file, schemas);
            if (views.FirstOrDefault(v => v.Name == view.Name) is { } other)
            {
                throw new SchemaLoadException(file, "view", $"duplicate view name '{view.Name}' (also defined in {other.SourceFile})");
            }

            views.Add(view);
        }

        // A folder with no definitions is a mistake (wrong path, or files named *.yaml.txt), not an empty platform.
        return views.Count > 0 ? views : throw new SchemaLoadException(directory, "#", "no view definitions (*.yaml, *.yml or *.json) in this folder");
    }

    /// <summary>Loads one definition file.</summary>
    public static ViewDefinition Load(string file, EventSchemaRegistry schemas) => Parse(File.ReadAllText(file), file, schemas);

    /// <summary>Parses one definition from text; <paramref name="file"/> is used in error messages.</summary>
    public static ViewDefinition Parse(string text, string file, EventSchemaRegistry schemas)
    {
        ArgumentNullException.ThrowIfNull(schemas);
        var stream = new YamlStream();
        var parser = new Parser(new StringReader(text));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            throw new SchemaLoadException(file, At(e.Start), "not valid YAML: " + e.Message);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet throws this (without a position) for some broken structures, e.g. an unclosed [ before
            // more keys; the parser's last event says where it gave up.
            var where = parser.Current is { } current ? At(current.Start) : "line 1";
            throw new SchemaLoadException(file, where, "not valid YAML: the structure breaks off here (an unclosed [, { or quote above?)");
        }

        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new SchemaLoadException(file, "line 1", "a view file must hold one mapping (view:, events:, bucket:, dimensions:, measures:)");
        }

        var ctx = new Context(file, schemas);
        foreach (var key in root.Children.Keys)
        {
            var name = ((YamlScalarNode)key).Value ?? string.Empty;
            if (!TopLevelKeys.Contains(name))
            {
                ctx.Fail(key, name, $"unknown field '{name}' (expected: {string.Join(", ", TopLevelKeys)})");
            }
        }

        var viewName = ctx.RequiredScalar(root, "view");
        if (!ViewNameRegex().IsMatch(viewName))
        {
            ctx.Fail(root.Children[new YamlScalarNode("view")], "view", $"'{viewName}' is not a valid view name (lower-case letters, digits and underscores, starting with a letter, at most 48 characters)");
        }

        var description = ctx.OptionalScalar(root, "description") ?? string.Empty;
        var eventTypes = ParseEvents(ctx, root);
        var bucket = ParseBucket(ctx, root);
        var lateness = ParseDuration(ctx, root, "allowedLateness", TimeSpan.FromHours(1));
        var sourceTypes = eventTypes ?? [.. schemas.EventTypes.Select(t => t.Name)];

        var usedNames = new HashSet<string>(StringComparer.Ordinal) { "bucket", "side", "kafkaPartition", "firstOffset", "lastOffset" };
        var dimensions = new List<Dimension>();
        foreach (var (keyNode, valueNode) in ctx.RequiredMapping(root, "dimensions", allowEmpty: true))
        {
            var name = ctx.ColumnName(keyNode, "dimensions", usedNames);
            var pathText = ctx.Scalar(valueNode, $"dimensions.{name}");
            var path = ctx.ResolvePath(valueNode, $"dimensions.{name}", pathText, sourceTypes);
            dimensions.Add(new Dimension(name, path));
        }

        if (dimensions.Count > ViewDefinition.MaxDimensions)
        {
            ctx.Fail(root.Children[new YamlScalarNode("dimensions")], "dimensions", $"at most {ViewDefinition.MaxDimensions} dimensions are supported, not {dimensions.Count}");
        }

        var measures = new List<Measure>();
        foreach (var (keyNode, valueNode) in ctx.RequiredMapping(root, "measures", allowEmpty: false))
        {
            var name = ctx.ColumnName(keyNode, "measures", usedNames);
            var measure = ParseMeasure(ctx, valueNode, name, sourceTypes);
            foreach (var column in measure.RealtimeColumns.Concat(measure.ServedColumns).Select(c => c.Name).Distinct().Where(c => c != name))
            {
                // E.g. a measure called users_hll next to distinct "users", whose real-time column has that name.
                if (!usedNames.Add(column))
                {
                    ctx.Fail(keyNode, $"measures.{name}", $"its column '{column}' clashes with another dimension's or measure's column; rename one of them");
                }
            }

            measures.Add(measure);
        }

        var filters = new List<ViewFilter>();
        if (root.Children.TryGetValue(new YamlScalarNode("filter"), out var filterNode))
        {
            if (filterNode is not YamlMappingNode filterMap)
            {
                throw ctx.Error(filterNode, "filter", "must be a mapping of field path to accepted value(s), e.g. payload.currency: [EUR, USD]");
            }

            foreach (var (keyNode, valueNode) in filterMap.Children)
            {
                var pathText = ctx.Scalar(keyNode, "filter");
                var path = ctx.ResolvePath(keyNode, $"filter.{pathText}", pathText, sourceTypes);
                var values = valueNode switch
                {
                    YamlScalarNode s => [s.Value ?? string.Empty],
                    YamlSequenceNode seq => seq.Children.Select(c => ctx.Scalar(c, $"filter.{pathText}")).ToList(),
                    _ => throw ctx.Error(valueNode, $"filter.{pathText}", "must be a value or a list of values"),
                };
                filters.Add(new ViewFilter(path, values));
            }
        }

        var schedule = "0 * * * *";
        if (root.Children.TryGetValue(new YamlScalarNode("batch"), out var batchNode))
        {
            if (batchNode is not YamlMappingNode batchMap)
            {
                throw ctx.Error(batchNode, "batch", "must be a mapping, e.g. batch: { schedule: \"0 * * * *\" }");
            }

            foreach (var (keyNode, valueNode) in batchMap.Children)
            {
                var key = ctx.Scalar(keyNode, "batch");
                if (key != "schedule")
                {
                    ctx.Fail(keyNode, $"batch.{key}", $"unknown field '{key}' (expected: schedule)");
                }

                schedule = ctx.Scalar(valueNode, "batch.schedule");
                if (schedule.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length != 5)
                {
                    ctx.Fail(valueNode, "batch.schedule", $"'{schedule}' is not a 5-field cron expression (minute hour day month weekday)");
                }
            }
        }

        return new ViewDefinition(viewName, description, eventTypes, filters, bucket, lateness, dimensions, measures, schedule, file);
    }

    private static List<string>? ParseEvents(Context ctx, YamlMappingNode root)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode("events"), out var node))
        {
            throw ctx.Error(root, "events", "required field 'events' is missing (a list of event types, or 'all')");
        }

        if (node is YamlScalarNode { Value: "all" })
        {
            return null;
        }

        var names = node switch
        {
            YamlScalarNode s => [s.Value ?? string.Empty],
            YamlSequenceNode seq => seq.Children.Select(c => ctx.Scalar(c, "events")).ToList(),
            _ => throw ctx.Error(node, "events", "must be 'all' or a list of event types"),
        };
        if (names.Count == 0)
        {
            ctx.Fail(node, "events", "must name at least one event type, or be 'all'");
        }

        foreach (var name in names)
        {
            if (ctx.Schemas.Find(name) is null)
            {
                ctx.Fail(node, "events", $"unknown event type '{name}' (known: {string.Join(", ", ctx.Schemas.EventTypes.Select(t => t.Name))})");
            }
        }

        return names;
    }

    private static ViewBucket ParseBucket(Context ctx, YamlMappingNode root)
    {
        var text = ctx.RequiredScalar(root, "bucket");
        var node = root.Children[new YamlScalarNode("bucket")];
        var size = ParseSpan(text);
        if (size is not { } span || span < TimeSpan.FromMinutes(1) || span > TimeSpan.FromDays(1) || TimeSpan.FromDays(1).Ticks % span.Ticks != 0)
        {
            throw ctx.Error(node, "bucket", $"'{text}' is not a bucket size: use minutes, hours or 1d that divide a day evenly (1m, 5m, 15m, 1h, 6h, 1d)");
        }

        return new ViewBucket(text, span);
    }

    private static TimeSpan ParseDuration(Context ctx, YamlMappingNode root, string field, TimeSpan fallback)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode(field), out var node))
        {
            return fallback;
        }

        var text = ctx.Scalar(node, field);
        return ParseSpan(text) is { } span && span >= TimeSpan.Zero && span <= TimeSpan.FromDays(7)
            ? span
            : throw ctx.Error(node, field, $"'{text}' is not a duration between 0s and 7d (e.g. 30s, 10m, 1h, 1d)");
    }

    /// <summary>Parses <c>30s</c>, <c>10m</c>, <c>1h</c>, <c>1d</c>.</summary>
    public static TimeSpan? ParseSpan(string text)
    {
        var match = SpanRegex().Match(text ?? string.Empty);
        if (!match.Success || !long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 100_000)
        {
            return null;
        }

        return match.Groups[2].Value switch
        {
            "s" => TimeSpan.FromSeconds(n),
            "m" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            _ => TimeSpan.FromDays(n),
        };
    }

    private static Measure ParseMeasure(Context ctx, YamlNode node, string name, IReadOnlyList<string> sourceTypes)
    {
        var field = $"measures.{name}";
        var text = ctx.Scalar(node, field).Trim();
        var usages = string.Join(", ", Measure.Kinds.Values.Select(k => k.Usage));
        var match = MeasureRegex().Match(text);
        var function = match.Success ? match.Groups[1].Value : text;
        if (!Measure.Kinds.TryGetValue(function, out var syntax))
        {
            throw ctx.Error(node, field, match.Success || MeasureNameRegex().IsMatch(text)
                ? $"unknown measure '{function}' ({usages})"
                : $"'{text}' is not a measure ({usages})");
        }

        var args = match.Success && match.Groups[2].Value.Trim().Length > 0 ? match.Groups[2].Value.Split(',', StringSplitOptions.TrimEntries) : [];
        var expected = (syntax.TakesPath ? 1 : 0) + syntax.Parameters.Count;
        if (args.Length != expected || args.Any(a => a.Length == 0))
        {
            throw ctx.Error(node, field, expected == 0
                ? $"{function} takes no arguments: write {syntax.Usage}"
                : $"{function} takes {(syntax.TakesPath ? "a path" : string.Empty)}{(syntax.Parameters.Count > 0 ? " and " + string.Join(", ", syntax.Parameters) : string.Empty)}, e.g. {syntax.Usage}");
        }

        var path = syntax.TakesPath ? ctx.ResolvePath(node, field, args[0], sourceTypes) : null;
        try
        {
            return syntax.Create(name, path, syntax.TakesPath ? args[1..] : args);
        }
        catch (MeasureDefinitionException e)
        {
            throw ctx.Error(node, field, e.Message);
        }
    }

    private static string At(Mark mark) => $"line {mark.Line}, column {mark.Column}";

    [GeneratedRegex("^[a-z][a-z0-9_]{0,47}$")]
    private static partial Regex ViewNameRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    private static partial Regex ColumnRegex();

    [GeneratedRegex("^([0-9]+)([smhd])$")]
    private static partial Regex SpanRegex();

    [GeneratedRegex(@"^([a-z]+)\s*\(\s*([^()]*)\)$")]
    private static partial Regex MeasureRegex();

    [GeneratedRegex("^[a-z]+$")]
    private static partial Regex MeasureNameRegex();

    private sealed class Context(string file, EventSchemaRegistry schemas)
    {
        public EventSchemaRegistry Schemas => schemas;

        public SchemaLoadException Error(YamlNode node, string field, string problem) => new(file, $"{At(node.Start)}: {field}", problem);

        public void Fail(YamlNode node, string field, string problem) => throw Error(node, field, problem);

        public string Scalar(YamlNode node, string field) =>
            node is YamlScalarNode { Value: { } value } ? value : throw Error(node, field, "must be a single value");

        public string RequiredScalar(YamlMappingNode map, string field) =>
            map.Children.TryGetValue(new YamlScalarNode(field), out var node)
                ? Scalar(node, field)
                : throw Error(map, field, $"required field '{field}' is missing");

        public string? OptionalScalar(YamlMappingNode map, string field) =>
            map.Children.TryGetValue(new YamlScalarNode(field), out var node) ? Scalar(node, field) : null;

        public IEnumerable<KeyValuePair<YamlNode, YamlNode>> RequiredMapping(YamlMappingNode map, string field, bool allowEmpty)
        {
            if (!map.Children.TryGetValue(new YamlScalarNode(field), out var node))
            {
                if (allowEmpty)
                {
                    return [];
                }

                throw Error(map, field, $"required field '{field}' is missing");
            }

            if (node is YamlScalarNode { Value: null or "" } && allowEmpty)
            {
                return [];
            }

            if (node is not YamlMappingNode mapping || (!allowEmpty && mapping.Children.Count == 0))
            {
                throw Error(node, field, allowEmpty ? "must be a mapping of name to path" : "must be a non-empty mapping of name to measure");
            }

            return mapping.Children;
        }

        public string ColumnName(YamlNode keyNode, string section, HashSet<string> used)
        {
            var name = Scalar(keyNode, section);
            if (!ColumnRegex().IsMatch(name) || name.Contains("__", StringComparison.Ordinal))
            {
                Fail(keyNode, $"{section}.{name}", $"'{name}' is not a valid column name (letters, digits, underscores, not starting with a digit; a double underscore is reserved)");
            }

            if (!used.Add(name))
            {
                Fail(keyNode, $"{section}.{name}", $"duplicate name '{name}' (dimension and measure names must be unique and not reserved: bucket, side, kafkaPartition, firstOffset, lastOffset)");
            }

            return name;
        }

        public FieldPath ResolvePath(YamlNode node, string field, string text, IReadOnlyList<string> sourceTypes)
        {
            switch (text)
            {
                case "eventId": return new FieldPath(text, FieldRoot.EventId, [], FieldTypes.Text);
                case "eventType": return new FieldPath(text, FieldRoot.EventType, [], FieldTypes.Text);
                case "userId": return new FieldPath(text, FieldRoot.UserId, [], FieldTypes.Text);
                case "metadata.source": return new FieldPath(text, FieldRoot.Source, [], FieldTypes.Text);
                case "metadata.version": return new FieldPath(text, FieldRoot.Version, [], FieldTypes.Text);
                case "timestamp": throw Error(node, field, "timestamp is what the view buckets by; it cannot be a dimension, measure or filter");
            }

            if (!text.StartsWith("payload.", StringComparison.Ordinal) || text.Length == "payload.".Length)
            {
                throw Error(node, field, $"unknown path '{text}' (use eventId, eventType, userId, metadata.source, metadata.version or payload.<field>)");
            }

            // The union of the types every schema version of every source type declares: a field may be missing in some
            // types or versions, and (say) a number in one and a string in another; measures skip values they cannot read.
            var segments = text["payload.".Length..].Split('.');
            var found = FieldTypes.None;
            var declared = false;
            foreach (var typeName in sourceTypes)
            {
                var type = Schemas.Find(typeName)!;
                foreach (var version in type.Versions)
                {
                    var schema = version.Schema;
                    foreach (var segment in segments)
                    {
                        schema = schema?.Properties.FirstOrDefault(p => p.Name == segment)?.Schema;
                    }

                    if (schema is null)
                    {
                        continue;
                    }

                    declared = true;
                    var fieldTypes = ToFieldTypes(schema.Types);
                    if (fieldTypes is null)
                    {
                        throw Error(node, field, $"'{text}' in {typeName} v{version.Version} is not a string, number or boolean; views read scalar fields only");
                    }

                    found |= fieldTypes.Value;
                }
            }

            return declared
                ? new FieldPath(text, FieldRoot.Payload, segments, found)
                : throw Error(node, field, $"unknown path '{text}': no schema of {string.Join(", ", sourceTypes)} declares it");
        }

        private static FieldTypes? ToFieldTypes(JsonTypes types)
        {
            var scalar = types & ~JsonTypes.Null;
            if (scalar == 0 || (scalar & ~(JsonTypes.String | JsonTypes.Number | JsonTypes.Integer | JsonTypes.Boolean)) != 0)
            {
                return null;
            }

            return (scalar.HasFlag(JsonTypes.String) ? FieldTypes.Text : FieldTypes.None)
                | ((scalar & (JsonTypes.Number | JsonTypes.Integer)) != 0 ? FieldTypes.Number : FieldTypes.None)
                | (scalar.HasFlag(JsonTypes.Boolean) ? FieldTypes.Boolean : FieldTypes.None);
        }
    }
}
