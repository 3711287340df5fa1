using System.IO.Hashing;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Sketches;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Speed.Views;

/// <summary>The mergeable state of one group in one batch: a slot per measure.</summary>
internal sealed class GroupState
{
    private readonly double[] _numbers;
    private readonly bool[] _seen;
    private readonly HyperLogLog?[] _hlls;
    private readonly DDSketch?[] _sketches;
    private readonly SpaceSaving?[] _tops;

    public GroupState(IReadOnlyList<Measure> measures)
    {
        var n = measures.Count;
        _numbers = new double[n];
        _seen = new bool[n];
        _hlls = new HyperLogLog?[n];
        _sketches = new DDSketch?[n];
        _tops = new SpaceSaving?[n];
        for (var i = 0; i < n; i++)
        {
            switch (measures[i].Kind)
            {
                case MeasureKind.Distinct:
                    _hlls[i] = new HyperLogLog();
                    break;
                case MeasureKind.Quantile:
                    _sketches[i] = new DDSketch();
                    break;
                case MeasureKind.TopK:
                    _tops[i] = new SpaceSaving(Math.Max(64, 4 * measures[i].K));
                    break;
            }
        }
    }

    /// <summary>Smallest Kafka offset counted into this group in this batch: part of the row key, so rows of different flushes never collide.</summary>
    public long FirstOffset { get; private set; } = long.MaxValue;

    public void Add(IReadOnlyList<Measure> measures, RealtimeAggregation.FieldRef[] fields, DecodedEvent e, long offset, ReadOnlySpan<FieldValue> payload)
    {
        FirstOffset = Math.Min(FirstOffset, offset);
        for (var i = 0; i < fields.Length; i++)
        {
            var kind = measures[i].Kind;
            if (kind == MeasureKind.Count)
            {
                _numbers[i]++;
                continue;
            }

            var value = RealtimeAggregation.Read(e, fields[i], payload);
            if (value.Kind == FieldKind.Missing)
            {
                continue;
            }

            switch (kind)
            {
                case MeasureKind.Sum when value.Kind == FieldKind.Number:
                    _numbers[i] += value.Number;
                    break;
                case MeasureKind.Min when value.Kind == FieldKind.Number:
                    _numbers[i] = _seen[i] ? Math.Min(_numbers[i], value.Number) : value.Number;
                    _seen[i] = true;
                    break;
                case MeasureKind.Max when value.Kind == FieldKind.Number:
                    _numbers[i] = _seen[i] ? Math.Max(_numbers[i], value.Number) : value.Number;
                    _seen[i] = true;
                    break;
                case MeasureKind.Quantile when value.Kind == FieldKind.Number:
                    _sketches[i]!.Add(value.Number);
                    break;
                case MeasureKind.Distinct:
                    AddDistinct(_hlls[i]!, value);
                    break;
                case MeasureKind.TopK:
                    _tops[i]!.Add(Text(value));
                    break;
            }
        }
    }

    public void AppendTo(List<object?> row, IReadOnlyList<Measure> measures)
    {
        for (var i = 0; i < measures.Count; i++)
        {
            switch (measures[i].Kind)
            {
                case MeasureKind.Count:
                    row.Add((ulong)_numbers[i]);
                    break;
                case MeasureKind.Sum:
                    row.Add(_numbers[i]);
                    break;
                case MeasureKind.Min or MeasureKind.Max:
                    row.Add(_seen[i] ? _numbers[i] : null);
                    break;
                case MeasureKind.Distinct:
                    row.Add(_hlls[i]!.RegisterValues.ToArray());
                    break;
                case MeasureKind.Quantile:
                    var buckets = _sketches[i]!.Buckets.ToArray();
                    row.Add(buckets.Select(b => b.Key).ToArray());
                    row.Add(buckets.Select(b => b.Value).ToArray());
                    break;
                case MeasureKind.TopK:
                    var top = _tops[i]!.Top(_tops[i]!.Capacity);
                    row.Add(top.Select(t => t.Key).ToArray());
                    row.Add(top.Select(t => t.Value).ToArray());
                    break;
            }
        }
    }

    private static void AddDistinct(HyperLogLog hll, FieldValue value)
    {
        switch (value.Kind)
        {
            case FieldKind.Text when value.Text is { } text:
                hll.Add(text);
                break;
            case FieldKind.Text:
                hll.AddHash(XxHash64.HashToUInt64(value.Utf8.Span));
                break;
            case FieldKind.Number:
                hll.Add(value.Number);
                break;
            default:
                hll.Add(value.Number != 0 ? "true" : "false");
                break;
        }
    }

    private static string Text(FieldValue value) => value.Kind switch
    {
        FieldKind.Text => value.Text ?? System.Text.Encoding.UTF8.GetString(value.Utf8.Span),
        FieldKind.Number => value.Number.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => value.Number != 0 ? "true" : "false",
    };
}
