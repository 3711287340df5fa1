using System.Globalization;
using System.Reflection;
using System.Text.Json;

namespace LambdaPlatform.Schemas.Views.Measures;

/// <summary>A column a measure owns, in <c>&lt;view&gt;_rt</c> or in <c>&lt;view&gt;_batch</c> and the merged view.</summary>
/// <param name="Name">Column name.</param>
/// <param name="Type">ClickHouse type (accepted by 18.16 and 26.5).</param>
public sealed record ViewColumn(string Name, string Type);

/// <summary>
/// One aggregate of a view, and everything the platform knows about its kind: the real-time state and its merge,
/// its columns on both sides, its ClickHouse SQL (merge of real-time deltas, exact batch, rollup), its Spark SQL,
/// its JSON rendering, whether it rolls up, and what it does with a missing value (<see cref="Input"/>). Each kind is
/// one sealed subtype in this folder; nothing outside these types switches on the kind, so the speed side, the batch
/// side and the serving side cannot drift apart.
/// </summary>
/// <remarks>
/// Adding a kind is adding one file: a sealed subtype with a public static <c>Syntax</c> property of type
/// <see cref="MeasureSyntax"/>; <see cref="Kinds"/> finds it. Instances are immutable and thread-safe.
/// </remarks>
public abstract class Measure
{
    private static readonly Lazy<IReadOnlyDictionary<string, MeasureSyntax>> Registry = new(Discover);

    /// <summary>Creates a measure.</summary>
    /// <param name="name">Column name.</param>
    /// <param name="path">The field it reads; null for a measure that reads none.</param>
    protected Measure(string name, FieldPath? path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Path = path;
    }

    /// <summary>Every measure kind, by its keyword (<c>count</c>, <c>sum</c>, …).</summary>
    public static IReadOnlyDictionary<string, MeasureSyntax> Kinds => Registry.Value;

    /// <summary>Column name (and JSON property name).</summary>
    public string Name { get; }

    /// <summary>The field it reads, or null (count).</summary>
    public FieldPath? Path { get; }

    /// <summary>The kind's keyword, e.g. <c>sum</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>The definition as a view file writes it, e.g. <c>quantile(payload.cartValue, 0.99)</c>.</summary>
    public virtual string Definition => Path is null ? Kind : $"{Kind}({Path.Text})";

    /// <summary>What it reads from <see cref="Path"/>: the missing-value rule (anything else is skipped).</summary>
    public abstract MeasureInput Input { get; }

    /// <summary>
    /// Bound on the relative error of the real-time value against the exact batch value: 0 for kinds that are exact
    /// in real time (when nothing fails); the sketch's documented bound otherwise.
    /// </summary>
    public virtual double RealtimeRelativeError => 0;

    /// <summary>True when values of fine buckets combine into a coarser bucket exactly (<see cref="RollupSql"/> is not null).</summary>
    public bool RollsUp => ServedColumns.Count == 1 && RollupSql(Name) is not null;

    /// <summary>A new, empty real-time state.</summary>
    public abstract MeasureState NewState();

    /// <summary>Its columns in <c>&lt;view&gt;_rt</c>, holding a mergeable state per delta row.</summary>
    public abstract IReadOnlyList<ViewColumn> RealtimeColumns { get; }

    /// <summary>Its columns in <c>&lt;view&gt;_batch</c>, in the merged view and in API answers: final values.</summary>
    public abstract IReadOnlyList<ViewColumn> ServedColumns { get; }

    /// <summary>
    /// Aggregate expressions over <c>&lt;view&gt;_rt</c> rows of one bucket and dimension values, each <c>expr AS alias</c>
    /// (first step of the merge; ClickHouse 18.16 and 26.5).
    /// </summary>
    public abstract IEnumerable<string> RealtimeMergeSql();

    /// <summary>
    /// Expressions over the aliases of <see cref="RealtimeMergeSql"/> giving <see cref="ServedColumns"/>, in order,
    /// each <c>expr AS column</c> (second step, so that no alias reads another alias in the same SELECT, which 18.16
    /// rejects as cyclic). Default: <see cref="MergedAlias"/> cast to the one served column's type.
    /// </summary>
    public virtual IEnumerable<string> RealtimeFinalSql()
    {
        var column = ServedColumns.Single();
        yield return $"CAST({MergedAlias} AS {column.Type}) AS {ViewSql.Quote(column.Name)}";
    }

    /// <summary>The alias of the merged state in <see cref="RealtimeMergeSql"/> (names with <c>__</c> are reserved for it).</summary>
    protected string MergedAlias => ViewSql.Quote(Name + "__merged");

    /// <summary>
    /// The exact batch aggregates giving <see cref="ServedColumns"/>, each <c>expr AS column</c> (ClickHouse 26.5);
    /// <paramref name="value"/> is the field read by <see cref="FieldSql.ClickHouse"/> (NULL when missing).
    /// </summary>
    public abstract IEnumerable<string> BatchSql(string value);

    /// <summary>The same aggregates in Spark SQL; <paramref name="value"/> is read by <see cref="FieldSql.Spark"/>.</summary>
    public abstract IEnumerable<string> SparkSql(string value);

    /// <summary>
    /// The aggregate that combines <paramref name="column"/> (this measure's served column) over the fine buckets of a
    /// coarser one, or null when the kind does not roll up (distinct counts, quantiles and top-k of buckets do not add up).
    /// </summary>
    public abstract string? RollupSql(string column);

    /// <summary>Writes the measure's JSON property from its served columns' TabSeparated fields (in order).</summary>
    public abstract void WriteJson(Utf8JsonWriter writer, IReadOnlyList<string> fields);

    /// <summary>
    /// Compares the real-time value of one bucket (and dimension values) with the exact batch value, each given as its
    /// <see cref="ServedColumns"/>' TabSeparated fields in order (as the real-time merge and <c>&lt;view&gt;_batch</c> give
    /// them), or null for a side that has no row there (the kind's value over no events). Used by the accuracy report
    /// a batch run writes before it drops a day's real-time rows.
    /// </summary>
    public abstract MeasureComparison Compare(IReadOnlyList<string>? realtime, IReadOnlyList<string>? exact);

    /// <summary>A ClickHouse number literal.</summary>
    protected static string Num(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// Compares a one-number value of each side (TabSeparated fields; NULL and nan are "no value"): the relative error, out
    /// of bound when it is over <paramref name="bound"/> (plus a hair for the rounding of the division itself).
    /// </summary>
    protected static MeasureComparison CompareNumbers(string realtime, string exact, double bound)
    {
        var error = (ClickHouseText.Number(realtime), ClickHouseText.Number(exact)) switch
        {
            (null, null) => 0,
            (null, _) or (_, null) => 1,
            ({ } r, { } e) when r.Equals(e) => 0,
            (_, 0) => 1,
            ({ } r, { } e) => Math.Abs(r - e) / Math.Abs(e),
        };
        return new MeasureComparison(error > bound * (1 + 1e-9), error);
    }

    /// <summary>Writes a number field as JSON: null for NULL/nan, a whole number without a fraction.</summary>
    protected static void WriteNumber(Utf8JsonWriter writer, string name, string field)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (ClickHouseText.Number(field) is not { } value)
        {
            writer.WriteNull(name);
        }
        else if (ulong.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var whole))
        {
            writer.WriteNumber(name, whole);
        }
        else
        {
            writer.WriteNumber(name, value);
        }
    }

    private static Dictionary<string, MeasureSyntax> Discover()
    {
        var kinds = new Dictionary<string, MeasureSyntax>(StringComparer.Ordinal);
        foreach (var type in typeof(Measure).Assembly.GetTypes().Where(t => t.IsSealed && t.IsSubclassOf(typeof(Measure))))
        {
            var syntax = type.GetProperty("Syntax", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as MeasureSyntax
                ?? throw new InvalidOperationException($"measure kind {type.Name} has no public static Syntax property");
            kinds.Add(syntax.Keyword, syntax);
        }

        return kinds;
    }
}

/// <summary>How a measure kind is written in a view file, and how it is made from what was written.</summary>
/// <param name="Keyword">The function name, e.g. <c>quantile</c>.</param>
/// <param name="Usage">An example, e.g. <c>quantile(path, q)</c>.</param>
/// <param name="TakesPath">False for kinds that read no field (count).</param>
/// <param name="Parameters">Names of the arguments after the path (e.g. <c>q</c>).</param>
/// <param name="Create">
/// Makes the measure from its column name, its resolved path (null when <paramref name="TakesPath"/> is false) and its
/// further arguments as written; throws <see cref="MeasureDefinitionException"/> naming what is wrong.
/// </param>
public sealed record MeasureSyntax(string Keyword, string Usage, bool TakesPath, IReadOnlyList<string> Parameters,
    Func<string, FieldPath?, IReadOnlyList<string>, Measure> Create);

/// <summary>A measure definition that cannot be built; the view loader adds the file, line and field.</summary>
public sealed class MeasureDefinitionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MeasureDefinitionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MeasureDefinitionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public MeasureDefinitionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Throws unless <paramref name="path"/> may hold a number.</summary>
    public static void RequireNumber(string keyword, FieldPath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!path.Types.HasFlag(FieldTypes.Number))
        {
            throw new MeasureDefinitionException($"{keyword} needs a number, but {path.Text} is {Describe(path.Types)}");
        }
    }

    /// <summary>Words for a set of field types, e.g. "a string".</summary>
    public static string Describe(FieldTypes types) => types switch
    {
        FieldTypes.Text => "a string",
        FieldTypes.Number => "a number",
        FieldTypes.Boolean => "a boolean",
        _ => "one of " + string.Join(", ", Enum.GetValues<FieldTypes>().Where(t => t != FieldTypes.None && types.HasFlag(t)).Select(t => t.ToString().ToLowerInvariant())),
    };
}

/// <summary>
/// The real-time state of one measure in one group (bucket, dimension values, Kafka partition) of one flush: it takes
/// each event's value (<see cref="Add"/>, applying the measure's missing-value rule), merges with another state of
/// the same measure, and writes the measure's <see cref="Measure.RealtimeColumns"/>. Not thread-safe.
/// </summary>
public abstract class MeasureState
{
    /// <summary>Adds one event's value (ignored by count; skipped when missing or of the wrong type).</summary>
    public abstract void Add(in FieldValue value);

    /// <summary>Merges another state of the same measure into this one.</summary>
    public abstract void Merge(MeasureState other);

    /// <summary>Appends the values of the measure's real-time columns, in order, in the types of <c>IClickHouse.InsertAsync</c>.</summary>
    public abstract void WriteTo(List<object?> row);
}
