using System.Diagnostics;
using System.Globalization;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>A scenario's progress lines, each prefixed with the seconds since the scenario started.</summary>
/// <param name="log">Where the lines go.</param>
internal sealed class ElapsedLog(TextWriter log)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Time since the scenario started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Writes <paramref name="line"/> after the elapsed seconds.</summary>
    public void Line(string line) => log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{_clock.Elapsed.TotalSeconds,6:F1}s {line}"));
}
