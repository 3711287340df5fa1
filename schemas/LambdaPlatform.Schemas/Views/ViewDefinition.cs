using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// A view, declared once in <c>schemas/views/&lt;name&gt;.yaml</c> and checked against the event schemas.
/// From it the platform derives the speed aggregation (in the speed layer), the batch SQL and the
/// serving DDL (<see cref="ViewSql"/>), so the two sides cannot drift apart.
/// </summary>
/// <param name="Name">View name: lower-case letters, digits and underscores; also the ClickHouse table prefix.</param>
/// <param name="Description">What the view answers.</param>
/// <param name="EventTypes">Source event types, or null for every event type.</param>
/// <param name="Filters">Conditions an event must meet (all of them).</param>
/// <param name="Bucket">Time bucket of the view.</param>
/// <param name="AllowedLateness">How long after its end a day stays open for late events before the batch may close it (move W over it). It does not limit the real-time side, which counts every event at or above W.</param>
/// <param name="Dimensions">Group-by fields, in order.</param>
/// <param name="Measures">Aggregates, in order (one <see cref="Measures.Measure"/> subtype per kind).</param>
/// <param name="BatchSchedule">Cron expression of the batch recompute (UTC).</param>
/// <param name="SourceFile">The file the view was read from.</param>
public sealed record ViewDefinition(
    string Name,
    string Description,
    IReadOnlyList<string>? EventTypes,
    IReadOnlyList<ViewFilter> Filters,
    ViewBucket Bucket,
    TimeSpan AllowedLateness,
    IReadOnlyList<Dimension> Dimensions,
    IReadOnlyList<Measure> Measures,
    string BatchSchedule,
    string SourceFile)
{
    /// <summary>Most dimensions a view may have.</summary>
    public const int MaxDimensions = 4;

    /// <summary>True when the event type is a source of this view.</summary>
    public bool Accepts(string eventType) => EventTypes is null || EventTypes.Contains(eventType, StringComparer.Ordinal);
}

/// <summary>A time bucket: <c>1m</c>, <c>1h</c> or <c>1d</c> (also <c>5m</c>, <c>15m</c>, …: any whole number of minutes, hours or days dividing a day).</summary>
/// <param name="Text">As written, e.g. <c>1m</c>.</param>
/// <param name="Size">Its length.</param>
public readonly record struct ViewBucket(string Text, TimeSpan Size)
{
    /// <summary>Start of the bucket holding <paramref name="time"/> (UTC).</summary>
    public DateTime Floor(DateTime time) => new(time.Ticks - (time.Ticks % Size.Ticks), DateTimeKind.Utc);

    /// <summary>Seconds in one bucket.</summary>
    public long Seconds => (long)Size.TotalSeconds;
}

/// <summary>Where a field path starts.</summary>
public enum FieldRoot
{
    /// <summary><c>eventId</c>.</summary>
    EventId,
    /// <summary><c>eventType</c>.</summary>
    EventType,
    /// <summary><c>timestamp</c>.</summary>
    Timestamp,
    /// <summary><c>userId</c>.</summary>
    UserId,
    /// <summary><c>metadata.source</c>.</summary>
    Source,
    /// <summary><c>metadata.version</c>.</summary>
    Version,
    /// <summary><c>payload.…</c>: a field inside the payload.</summary>
    Payload,
}

/// <summary>The JSON types a field may hold, as the schemas declare it (null aside: any field may be missing or null).</summary>
[Flags]
public enum FieldTypes
{
    /// <summary>No scalar type.</summary>
    None = 0,
    /// <summary>A string.</summary>
    Text = 1,
    /// <summary>A number (or integer).</summary>
    Number = 2,
    /// <summary>true/false.</summary>
    Boolean = 4,
}

/// <summary>A path into an event, e.g. <c>payload.location</c>, <c>userId</c>, <c>metadata.source</c>.</summary>
/// <param name="Text">As written.</param>
/// <param name="Root">Which part of the event.</param>
/// <param name="PayloadPath">For <see cref="FieldRoot.Payload"/>, the property names below <c>payload</c>; else empty.</param>
/// <param name="Types">The types the schemas allow for the field, across the view's event types and schema versions.</param>
public sealed record FieldPath(string Text, FieldRoot Root, IReadOnlyList<string> PayloadPath, FieldTypes Types)
{
    /// <inheritdoc />
    public override string ToString() => Text;
}

/// <summary>A group-by field.</summary>
/// <param name="Name">Column name.</param>
/// <param name="Path">Where its value comes from.</param>
public sealed record Dimension(string Name, FieldPath Path);

/// <summary>A filter: the field must equal one of the values, compared as text (<see cref="FieldText"/>); a missing field matches nothing.</summary>
/// <param name="Path">The field.</param>
/// <param name="Values">Accepted values.</param>
public sealed record ViewFilter(FieldPath Path, IReadOnlyList<string> Values);
