using System.Globalization;
using LambdaPlatform.Batch.Archive;
using LambdaPlatform.Speed;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LambdaPlatform.Hosting;

/// <summary>Health of the speed layer: unhealthy while flushes fail, with the reason and the last flush time.</summary>
public sealed class SpeedHealthCheck(SpeedConsumer consumer) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var health = consumer.Health;
        var description = $"{health.Status}; last flush {(health.LastFlushAt is { } at ? at.ToString("O", CultureInfo.InvariantCulture) : "never")}";
        return Task.FromResult(health.Healthy ? HealthCheckResult.Healthy(description) : HealthCheckResult.Unhealthy(description));
    }
}

/// <summary>Health of the archiver: unhealthy while publications fail, with the reason.</summary>
public sealed class ArchiverHealthCheck(Archiver archiver) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(archiver.Health.Healthy ? HealthCheckResult.Healthy(archiver.Health.Status) : HealthCheckResult.Unhealthy(archiver.Health.Status));
}
