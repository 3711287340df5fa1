using System.Diagnostics;

namespace LambdaPlatform.Speed;

/// <summary>
/// The speed layer's spans, on the activity source <see cref="SourceName"/> (registered by the host's composition helper):
/// per batch, <c>speed.consume</c> (reading and decoding the batch's records), <c>speed.flush</c> (writing it to every sink,
/// linked to the producers' traces by the records' <c>traceparent</c> headers) and <c>speed.commit</c> (committing its offsets).
/// </summary>
public static class SpeedTracing
{
    /// <summary>Name of the speed layer's activity source: <c>LambdaPlatform.Speed</c>.</summary>
    public const string SourceName = "LambdaPlatform.Speed";

    /// <summary>Most producer traces one flush span links to (the first ones of the batch): 128.</summary>
    public const int MaxLinks = 128;

    /// <summary>The activity source.</summary>
    public static ActivitySource Source { get; } = new(SourceName);
}
