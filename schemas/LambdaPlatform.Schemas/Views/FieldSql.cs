using System.Text;

namespace LambdaPlatform.Schemas.Views;

/// <summary>What a measure reads from a field.</summary>
public enum MeasureInput
{
    /// <summary>Nothing: the measure counts events.</summary>
    None,
    /// <summary>JSON numbers only; any other value (missing, null, a string, a boolean) is skipped.</summary>
    Number,
    /// <summary>The value's text form (<see cref="FieldText"/>); missing and null values are skipped.</summary>
    Text,
}

/// <summary>
/// SQL that reads a field of a master-dataset row (columns eventId, eventType, timestamp, userId, source, version,
/// payload as JSON text, kafkaPartition, kafkaOffset) under the platform's one missing-value rule: the expression is
/// NULL when the field is missing or null (or, for <see cref="MeasureInput.Number"/>, not a JSON number), so every SQL
/// aggregate skips it, exactly as the real-time side skips <see cref="FieldKind.Missing"/>. Numbers read as text take
/// <see cref="FieldText"/>'s form on both sides.
/// </summary>
public static class FieldSql
{
    private static readonly string JsonNumberTypes = "('Int64', 'UInt64', 'Double')";

    /// <summary>ClickHouse (26.5, the batch engine) expression of <paramref name="path"/> read as <paramref name="input"/>; nullable.</summary>
    public static string ClickHouse(FieldPath path, MeasureInput input)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Root != FieldRoot.Payload)
        {
            return input == MeasureInput.Number
                ? throw new ArgumentException($"{path.Text} is text; it cannot be read as a number", nameof(path))
                : Envelope(path.Root);
        }

        var keys = string.Join(", ", path.PayloadPath.Select(ViewSql.Literal));
        var type = $"JSONType(payload, {keys})";
        var number = $"JSONExtractFloat(payload, {keys})";
        return input switch
        {
            // JSONExtractFloat alone would read the string "12" as 12: the type decides.
            MeasureInput.Number => $"if({type} IN {JsonNumberTypes}, {number}, NULL)",
            _ => $"multiIf({type} = 'String', JSONExtractString(payload, {keys}), {type} IN {JsonNumberTypes}, if({number} = 0, '0', toString({number})), {type} = 'Bool', if(JSONExtractBool(payload, {keys}), 'true', 'false'), NULL)",
        };
    }

    /// <summary>ClickHouse expression of a dimension: its text, or <see cref="FieldText.MissingDimension"/> when missing.</summary>
    public static string ClickHouseDimension(FieldPath path) => $"ifNull({ClickHouse(path, MeasureInput.Text)}, {ViewSql.Literal(FieldText.MissingDimension)})";

    /// <summary>
    /// Spark SQL expression of <paramref name="path"/> read as <paramref name="input"/>; nullable. Payload fields are
    /// parsed with <c>from_json</c> and a one-field schema, so a string is not read as a number. Spark writes numbers
    /// as text like <see cref="FieldText"/> for integers below 10^15 and for decimals in plain notation; beyond that
    /// its notation differs (Spark is checked for form here, not run).
    /// </summary>
    public static string Spark(FieldPath path, MeasureInput input)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Root != FieldRoot.Payload)
        {
            return input == MeasureInput.Number
                ? throw new ArgumentException($"{path.Text} is text; it cannot be read as a number", nameof(path))
                : path.Root == FieldRoot.EventId ? "CAST(eventId AS STRING)" : Envelope(path.Root);
        }

        var number = SparkParsed(path, "DOUBLE");
        if (input == MeasureInput.Number)
        {
            return number;
        }

        var text = SparkParsed(path, "STRING");
        var numberText = $"CASE WHEN {number} = floor({number}) AND abs({number}) < 1e15 THEN CAST(CAST({number} AS BIGINT) AS STRING) ELSE lower(CAST({number} AS STRING)) END";
        return $"CASE WHEN {number} IS NOT NULL THEN {numberText} ELSE {text} END";
    }

    /// <summary>Spark SQL expression of a dimension: its text, or <see cref="FieldText.MissingDimension"/> when missing.</summary>
    public static string SparkDimension(FieldPath path) => $"coalesce({Spark(path, MeasureInput.Text)}, {SparkLiteral(FieldText.MissingDimension)})";

    /// <summary>A Spark SQL string literal.</summary>
    public static string SparkLiteral(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var sb = new StringBuilder(value.Length + 2).Append('\'');
        foreach (var c in value)
        {
            sb.Append(c switch
            {
                '\'' => "\\'",
                '\\' => "\\\\",
                _ => c.ToString(),
            });
        }

        return sb.Append('\'').ToString();
    }

    private static string Envelope(FieldRoot root) => root switch
    {
        FieldRoot.EventId => "toString(eventId)",
        FieldRoot.EventType => "eventType",
        FieldRoot.UserId => "userId",
        FieldRoot.Source => "source",
        FieldRoot.Version => "version",
        _ => throw new ArgumentException($"{root} is not readable by a view", nameof(root)),
    };

    private static string SparkParsed(FieldPath path, string leafType)
    {
        // from_json(payload, 'struct<`a`:struct<`b`:DOUBLE>>').`a`.`b`
        var schema = leafType;
        for (var i = path.PayloadPath.Count - 1; i >= 0; i--)
        {
            schema = $"struct<`{path.PayloadPath[i].Replace("`", "``", StringComparison.Ordinal)}`:{schema}>";
        }

        var access = string.Concat(path.PayloadPath.Select(p => ".`" + p.Replace("`", "``", StringComparison.Ordinal) + "`"));
        return $"from_json(payload, {SparkLiteral(schema)}){access}";
    }
}
