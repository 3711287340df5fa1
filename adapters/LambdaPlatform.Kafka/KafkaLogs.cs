using System.Globalization;
using System.Text.RegularExpressions;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Kafka;

/// <summary>
/// A consumer's position moved past records it never read: the broker no longer had the committed offset (retention, or the
/// dev broker's 5 MiB per partition) and the client resumed at the oldest record it still had (<c>auto.offset.reset</c>).
/// </summary>
/// <param name="Topic">The topic.</param>
/// <param name="Partition">The partition.</param>
/// <param name="From">The position the consumer was at.</param>
/// <param name="To">Where it resumed.</param>
public sealed record OffsetReset(string Topic, int Partition, long From, long To)
{
    /// <summary>Records skipped: never read by this consumer group.</summary>
    public long Skipped => Math.Max(0, To - From);
}

/// <summary>
/// librdkafka's log of a consumer, routed to the host's logger (level for level) instead of the process's stderr, with the one
/// line that says records were skipped (<see cref="OffsetReset"/>) turned into a call the consumer counts and reports as an
/// error: the client's only other trace of that loss is the log line itself.
/// </summary>
public static partial class KafkaLogs
{
    /// <summary>A log handler for <see cref="ConsumerBuilder{TKey,TValue}.SetLogHandler"/>.</summary>
    /// <param name="logger">Where the client's lines go.</param>
    /// <param name="skipped">Called for each offset reset that skipped records (on librdkafka's thread).</param>
    public static Action<IConsumer<TKey, TValue>, LogMessage> Handler<TKey, TValue>(ILogger logger, Action<OffsetReset> skipped)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(skipped);
        return (_, message) =>
        {
            if (TryParseReset(message.Message, out var reset) && reset.Skipped > 0)
            {
                logger.LogError("kafka: {Topic} [{Partition}] resumed at offset {To}, {Skipped} records after offset {From} were never read (the broker no longer had them): {Message}",
                    reset.Topic, reset.Partition, reset.To, reset.Skipped, reset.From, message.Message);
                skipped(reset);
                return;
            }

            logger.Log(Level(message.Level), "kafka {Facility}: {Message}", message.Facility, message.Message);
        };
    }

    /// <summary>
    /// Reads librdkafka's line for an offset reset that happened because the position was out of range, e.g.
    /// <c>events [45]: offset reset (at offset 196033 (leader epoch 0), broker 1) to cached BEGINNING offset offset 197254
    /// (leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out of range</c>.
    /// A reset with no position before it (a new group) is not one.
    /// </summary>
    public static bool TryParseReset(string? message, out OffsetReset reset)
    {
        reset = null!;
        if (message is null || !message.Contains("Offset out of range", StringComparison.Ordinal))
        {
            return false;
        }

        var match = ResetLine().Match(message);
        if (!match.Success)
        {
            return false;
        }

        reset = new OffsetReset(match.Groups["topic"].Value, int.Parse(match.Groups["partition"].Value, CultureInfo.InvariantCulture),
            long.Parse(match.Groups["from"].Value, CultureInfo.InvariantCulture), long.Parse(match.Groups["to"].Value, CultureInfo.InvariantCulture));
        return true;
    }

    private static LogLevel Level(SyslogLevel level) => level switch
    {
        SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical or SyslogLevel.Error => LogLevel.Error,
        SyslogLevel.Warning => LogLevel.Warning,
        SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
        _ => LogLevel.Debug,
    };

    [GeneratedRegex(@"(?<topic>[^\s\[\]]+) \[(?<partition>\d+)\]: offset reset \(at offset (?<from>\d+).*? to .*?offset (?<to>\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex ResetLine();
}
