using System.Runtime.InteropServices;
using System.Text;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Speed.Views;

/// <summary>
/// Turns a batch of events into real-time delta rows for every view, in one pass per event: payload
/// fields are read once per event for all views, duplicates (same eventId within the dedupe window) are
/// dropped, and each (bucket, dimensions, partition) group accumulates every measure's mergeable state. Every
/// event whose bucket is at or above the view's batch watermark W is counted, in whatever order it arrives
/// (real-time rows are mergeable deltas: no window has to close); an event below W is late, left to the batch
/// layer (it reaches the master dataset and makes its day dirty). State that outlives a batch (the dedupe window)
/// changes only in <see cref="Commit"/>, after the rows are durable, so a retried batch yields exactly the same
/// rows. Not thread-safe: one per consumer.
/// </summary>
public sealed class RealtimeAggregation
{
    private readonly ViewPlan[] _views;
    private readonly Dictionary<string, TypePlan> _types = new(StringComparer.Ordinal);
    private readonly DedupeWindow _dedupe;
    private readonly Utf8Interner _interner = new();

    /// <summary>Creates the aggregation for <paramref name="views"/> over the event types in <paramref name="schemas"/>.</summary>
    /// <param name="views">The views.</param>
    /// <param name="schemas">Event schemas (for the list of event types).</param>
    /// <param name="dedupeWindow">How many recent eventIds are remembered for duplicate removal. Default 1,000,000 (~60 MB).</param>
    public RealtimeAggregation(IReadOnlyList<ViewDefinition> views, EventSchemaRegistry schemas, int dedupeWindow = 1_000_000)
    {
        ArgumentNullException.ThrowIfNull(views);
        ArgumentNullException.ThrowIfNull(schemas);
        _views = [.. views.Select((v, i) => new ViewPlan(v, i))];
        _dedupe = new DedupeWindow(dedupeWindow);
        foreach (var type in schemas.EventTypes)
        {
            var paths = new List<IReadOnlyList<string>>();
            var accepting = new List<(ViewPlan View, FieldRef[] Dims, FieldRef[] Measures, (FieldRef Field, string[] Values)[] Filters)>();
            foreach (var view in _views.Where(v => v.Definition.Accepts(type.Name)))
            {
                FieldRef Ref(FieldPath? path)
                {
                    if (path is null)
                    {
                        return new FieldRef(NoField, -1);
                    }

                    if (path.Root != FieldRoot.Payload)
                    {
                        return new FieldRef(path.Root, -1);
                    }

                    var index = paths.FindIndex(p => p.SequenceEqual(path.PayloadPath));
                    if (index < 0)
                    {
                        index = paths.Count;
                        paths.Add(path.PayloadPath);
                    }

                    return new FieldRef(FieldRoot.Payload, index);
                }

                accepting.Add((view,
                    [.. view.Definition.Dimensions.Select(d => Ref(d.Path))],
                    [.. view.Definition.Measures.Select(m => m.Input == MeasureInput.None ? Ref(null) : Ref(m.Path))],
                    [.. view.Definition.Filters.Select(f => (Ref(f.Path), f.Values.ToArray()))]));
            }

            _types[type.Name] = new TypePlan(new PayloadExtractor(paths), [.. accepting]);
        }
    }

    /// <summary>The views, in order.</summary>
    public IReadOnlyList<ViewDefinition> Views => [.. _views.Select(v => v.Definition)];

    /// <summary>
    /// Aggregates <paramref name="batch"/>. A record is left out of view v when its offset is at or below
    /// <paramref name="flushedThrough"/>(v, partition) (already durable before a restart); an event whose
    /// bucket starts below <paramref name="batchWatermark"/>(v) is late (the batch layer owns it); every other event
    /// is counted, however old.
    /// </summary>
    public AggregationResult Aggregate(IReadOnlyList<ConsumedEvent> batch, Func<string, int, long>? flushedThrough = null, Func<string, DateTime>? batchWatermark = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var result = new AggregationResult(_views.Length, batch.Count);
        var positions = new Dictionary<int, (long First, long Last)>();
        foreach (var c in batch)
        {
            positions[c.Partition] = positions.TryGetValue(c.Partition, out var p) ? (Math.Min(p.First, c.Offset), Math.Max(p.Last, c.Offset)) : (c.Offset, c.Offset);
        }

        var groups = new Dictionary<GroupKey, GroupState>[_views.Length];
        var watermarks = new DateTime[_views.Length];
        for (var v = 0; v < _views.Length; v++)
        {
            groups[v] = [];
            watermarks[v] = batchWatermark?.Invoke(_views[v].Definition.Name) ?? DateTime.MinValue;
        }

        var newest = new Dictionary<int, DateTime>();
        var seen = new HashSet<Guid>(batch.Count);
        var rented = new FieldValue[16];
        foreach (var c in batch)
        {
            var e = c.Event;
            if (!_types.TryGetValue(e.EventType, out var type) || type.Views.Length == 0)
            {
                continue;
            }

            if (_dedupe.Contains(e.EventId) || !seen.Add(e.EventId))
            {
                result.Duplicates++;
                continue;
            }

            result.NewIds.Add(e.EventId);
            ref var partitionNewest = ref CollectionsMarshal.GetValueRefOrAddDefault(newest, c.Partition, out _);
            if (e.Timestamp > partitionNewest)
            {
                partitionNewest = e.Timestamp;
            }

            if (rented.Length < type.Extractor.SlotCount)
            {
                rented = new FieldValue[type.Extractor.SlotCount];
            }

            var payloadValues = rented.AsSpan(0, type.Extractor.SlotCount);
            type.Extractor.Extract(e.Payload, payloadValues);

            foreach (var (view, dims, measures, filters) in type.Views)
            {
                var v = view.Index;
                if (flushedThrough is not null && c.Offset <= flushedThrough(view.Definition.Name, c.Partition))
                {
                    continue;
                }

                if (!Matches(e, filters, payloadValues))
                {
                    continue;
                }

                var bucket = view.Definition.Bucket.Floor(e.Timestamp);
                if (bucket < watermarks[v])
                {
                    result.Late[v]++;
                    continue;
                }

                var key = new GroupKey(bucket.Ticks, c.Partition,
                    dims.Length > 0 ? DimText(e, dims[0], payloadValues) : null,
                    dims.Length > 1 ? DimText(e, dims[1], payloadValues) : null,
                    dims.Length > 2 ? DimText(e, dims[2], payloadValues) : null,
                    dims.Length > 3 ? DimText(e, dims[3], payloadValues) : null);
                ref var state = ref CollectionsMarshal.GetValueRefOrAddDefault(groups[v], key, out var exists);
                if (!exists)
                {
                    state = new GroupState(view.Definition.Measures);
                }

                state!.Add(measures, e, c.Offset, payloadValues);
                result.Counted[v]++;
            }
        }

        result.NewestEventTime = newest;
        for (var v = 0; v < _views.Length; v++)
        {
            result.Rows[v] = [.. groups[v].Select(g => _views[v].ToRow(g.Key, g.Value, positions[g.Key.Partition]))];
        }

        return result;
    }

    /// <summary>Makes the batch's eventIds part of the dedupe window; call after its rows are durable.</summary>
    public void Commit(AggregationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        // Aggregate found none of them in the window, and nothing else adds to it in between.
        foreach (var id in result.NewIds)
        {
            _dedupe.AddUnseen(id);
        }
    }

    private static bool Matches(DecodedEvent e, (FieldRef Field, string[] Values)[] filters, ReadOnlySpan<FieldValue> payload)
    {
        foreach (var (field, values) in filters)
        {
            if (Read(e, field, payload).AsText() is not { } text || Array.IndexOf(values, text) < 0)
            {
                return false;
            }
        }

        return true;
    }

    private string DimText(DecodedEvent e, FieldRef field, ReadOnlySpan<FieldValue> payload)
    {
        var value = Read(e, field, payload);
        return value.Kind == FieldKind.Text && value.Text is null ? _interner.Intern(value.Utf8.Span) : value.AsText() ?? FieldText.MissingDimension;
    }

    /// <summary>A field reference of a measure that reads no field (count).</summary>
    internal const FieldRoot NoField = (FieldRoot)(-1);

    /// <summary>The value of a field in an event.</summary>
    internal static FieldValue Read(DecodedEvent e, FieldRef field, ReadOnlySpan<FieldValue> payload) => field.Root switch
    {
        FieldRoot.Payload => payload[field.Slot],
        FieldRoot.EventType => FieldValue.OfText(e.EventType),
        FieldRoot.UserId => FieldValue.OfText(e.UserId),
        FieldRoot.Source => FieldValue.OfText(e.Source),
        FieldRoot.Version => FieldValue.OfText(e.Version),
        FieldRoot.EventId => FieldValue.OfText(e.EventId.ToString()),
        _ => FieldValue.Missing,
    };

    /// <summary>Where a view reads a field: an envelope field, or a payload slot of the event type's extractor.</summary>
    internal readonly record struct FieldRef(FieldRoot Root, int Slot);

    private sealed record TypePlan(PayloadExtractor Extractor, (ViewPlan View, FieldRef[] Dims, FieldRef[] Measures, (FieldRef Field, string[] Values)[] Filters)[] Views);

    private sealed class ViewPlan(ViewDefinition definition, int index)
    {
        public int Index => index;

        public ViewDefinition Definition => definition;

        public object?[] ToRow(GroupKey key, GroupState state, (long First, long Last) offsets)
        {
            var row = new List<object?>(8 + Definition.Measures.Count) { new DateTime(key.Bucket, DateTimeKind.Utc) };
            var dims = new[] { key.D0, key.D1, key.D2, key.D3 };
            for (var i = 0; i < Definition.Dimensions.Count; i++)
            {
                row.Add(dims[i] ?? FieldText.MissingDimension);
            }

            row.Add((ushort)key.Partition);
            row.Add((ulong)state.FirstOffset);
            row.Add((ulong)offsets.Last);
            state.AppendTo(row);
            return [.. row];
        }
    }
}

/// <summary>What <see cref="RealtimeAggregation.Aggregate"/> produced for one batch.</summary>
public sealed class AggregationResult
{
    internal AggregationResult(int views, int events)
    {
        NewIds = new List<Guid>(events);
        Rows = new IReadOnlyList<object?[]>[views];
        Counted = new long[views];
        Late = new long[views];
    }

    /// <summary>Per view (in order), the delta rows in the real-time table's column order.</summary>
    public IReadOnlyList<object?[]>[] Rows { get; }

    /// <summary>Per view, events counted.</summary>
    public long[] Counted { get; }

    /// <summary>Per view, late events: their bucket is below the view's W (left to the batch layer).</summary>
    public long[] Late { get; }

    /// <summary>Duplicates removed (same eventId seen before within the window).</summary>
    public long Duplicates { get; internal set; }

    internal List<Guid> NewIds { get; }

    /// <summary>Per Kafka partition, the newest event time among the batch's valid events (for freshness).</summary>
    public IReadOnlyDictionary<int, DateTime> NewestEventTime { get; internal set; } = new Dictionary<int, DateTime>();
}
