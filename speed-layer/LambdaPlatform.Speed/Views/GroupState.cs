using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Schemas.Views.Measures;

namespace LambdaPlatform.Speed.Views;

/// <summary>The mergeable state of one group in one batch: one <see cref="MeasureState"/> per measure of the view.</summary>
internal sealed class GroupState
{
    private readonly MeasureState[] _states;

    public GroupState(IReadOnlyList<Measure> measures)
    {
        _states = new MeasureState[measures.Count];
        for (var i = 0; i < _states.Length; i++)
        {
            _states[i] = measures[i].NewState();
        }
    }

    /// <summary>Smallest Kafka offset counted into this group in this batch: part of the row key, so rows of different flushes never collide.</summary>
    public long FirstOffset { get; private set; } = long.MaxValue;

    public void Add(RealtimeAggregation.FieldRef[] fields, DecodedEvent e, long offset, ReadOnlySpan<FieldValue> payload)
    {
        FirstOffset = Math.Min(FirstOffset, offset);
        for (var i = 0; i < _states.Length; i++)
        {
            _states[i].Add(fields[i].Root == RealtimeAggregation.NoField ? FieldValue.Missing : RealtimeAggregation.Read(e, fields[i], payload));
        }
    }

    public void AppendTo(List<object?> row)
    {
        foreach (var state in _states)
        {
            state.WriteTo(row);
        }
    }
}
