using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Views;
using LambdaPlatform.Speed.Views;

namespace LambdaPlatform.Speed;

/// <summary>The speed layer's standard sinks: the raw <c>events</c> table and every view's real-time table.</summary>
public static class SpeedSinks
{
    /// <summary>Creates the sinks, in the order they are written.</summary>
    public static IReadOnlyList<IEventSink> Create(IClickHouse clickHouse, IReadOnlyList<ViewDefinition> views, EventSchemaRegistry schemas, SpeedMetrics? metrics = null,
        TimeProvider? clock = null) =>
        [new RawEventsTable(clickHouse), new RealtimeViewsSink(clickHouse, views, schemas, metrics, clock)];
}
