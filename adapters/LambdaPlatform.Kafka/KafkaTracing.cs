using System.Diagnostics;
using System.Text;
using Confluent.Kafka;

namespace LambdaPlatform.Kafka;

/// <summary>
/// W3C trace context on Kafka records: a producer puts the <c>traceparent</c> (and <c>tracestate</c>) of its current span in
/// the record's headers (<see cref="Inject"/>); a consumer reads it back (<see cref="TryExtract"/>) to link the span that
/// processed the record to the producer's trace. The platform's own producers (<c>lambda produce</c>, the demo traffic) start
/// their spans on <see cref="ProducerSource"/>.
/// </summary>
public static class KafkaTracing
{
    /// <summary>Name of the platform's producers' activity source: <c>LambdaPlatform.Producer</c>.</summary>
    public const string ProducerSourceName = "LambdaPlatform.Producer";

    /// <summary>The W3C header carrying the trace and span ids: <c>traceparent</c>.</summary>
    public const string TraceParentHeader = "traceparent";

    /// <summary>The W3C header carrying vendor trace state: <c>tracestate</c>.</summary>
    public const string TraceStateHeader = "tracestate";

    /// <summary>The platform's producers' spans (one per batch of records sent, not per record).</summary>
    public static ActivitySource ProducerSource { get; } = new(ProducerSourceName);

    /// <summary>
    /// Adds <paramref name="activity"/>'s context as <c>traceparent</c> (and <c>tracestate</c> when set) to <paramref name="headers"/>.
    /// Does nothing when <paramref name="activity"/> is null (no trace is being recorded) or uses the hierarchical id format.
    /// </summary>
    /// <returns><paramref name="headers"/>, or a new <see cref="Headers"/> when it was null and a header was added; null when nothing was added to null.</returns>
    public static Headers? Inject(Activity? activity, Headers? headers)
    {
        if (activity is null || activity.IdFormat != ActivityIdFormat.W3C || activity.Id is not { } id)
        {
            return headers;
        }

        headers ??= [];
        headers.Add(TraceParentHeader, Encoding.ASCII.GetBytes(id));
        if (activity.TraceStateString is { Length: > 0 } state)
        {
            headers.Add(TraceStateHeader, Encoding.ASCII.GetBytes(state));
        }

        return headers;
    }

    /// <summary>The trace context a producer put in <paramref name="headers"/> (<c>traceparent</c>, <c>tracestate</c>), when valid.</summary>
    /// <remarks>Reads the last <c>traceparent</c> header; a malformed one (hostile input) is ignored, never thrown on.</remarks>
    public static bool TryExtract(Headers? headers, out ActivityContext context)
    {
        context = default;
        if (headers is null || headers.Count == 0 || !headers.TryGetLastBytes(TraceParentHeader, out var parent) || parent is null || parent.Length is < 55 or > 128)
        {
            return false;
        }

        string? state = null;
        if (headers.TryGetLastBytes(TraceStateHeader, out var stateBytes) && stateBytes is { Length: > 0 and <= 512 })
        {
            state = Encoding.ASCII.GetString(stateBytes);
        }

        return ActivityContext.TryParse(Encoding.ASCII.GetString(parent), state, isRemote: true, out context);
    }
}
