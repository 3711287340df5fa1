using System.Diagnostics;
using LambdaPlatform.Kafka;
using LambdaPlatform.Schemas.Events;
using Microsoft.Extensions.Hosting;

namespace LambdaPlatform.Cli.Hosting;

/// <summary>
/// <c>lambda up --demo</c>: a steady stream of realistic events (page views, searches, carts, checkouts
/// from many users and stores) at <paramref name="eventsPerSecond"/>, stamped with the current time, in the
/// shape producers send (<see cref="EventGenerator"/>: checkouts with line items, app versions in
/// <c>metadata.version</c>, optional fields present, absent or null).
/// </summary>
public sealed class DemoTraffic(EventProducer producer, int eventsPerSecond, TimeProvider clock) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var generator = new EventGenerator(new EventGeneratorOptions { Seed = Environment.TickCount });
        const int TicksPerSecond = 20;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / TicksPerSecond), clock);
        var owed = 0.0;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                owed += (double)eventsPerSecond / TicksPerSecond;
                var now = clock.GetUtcNow().UtcDateTime;

                // One producer span per tick: its records carry its traceparent, and the flushes that write them link to it.
                using var activity = owed >= 1 ? KafkaTracing.ProducerSource.StartActivity("demo.produce", ActivityKind.Producer) : null;
                activity?.SetTag("messaging.system", "kafka");
                activity?.SetTag("messaging.destination.name", Topics.Events);
                activity?.SetTag("messaging.batch.message_count", (int)owed);
                for (; owed >= 1; owed--)
                {
                    producer.Send(generator.Next(now).Json);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
