using Hangfire;
using Hangfire.Storage;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LambdaPlatform.Jobs.Tests;

/// <summary>The production storage: Hangfire on a real PostgreSQL server started by the fixture.</summary>
[Collection(JobsCollection.Name)]
public sealed class PostgreSqlStorageTests(JobsFixture fixture, PostgresServer postgres) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task EnqueuedRecompute_IsProcessed_WithPostgreSqlStorage()
    {
        var view = fixture.NewCheckoutView();
        var options = new JobsOptions
        {
            Storage = JobsStorage.PostgreSql,
            PostgreSqlConnectionString = postgres.ConnectionString,
            PollingInterval = TimeSpan.FromMilliseconds(200),
        };
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<TimeProvider>(new FakeClock(new DateTimeOffset(2024, 5, 3, 0, 10, 0, TimeSpan.Zero)));
        builder.Services.AddSingleton<IClickHouse>(fixture.ClickHouse);
        builder.Services.AddSingleton<IReadOnlyList<ViewDefinition>>([view]);
        builder.Services.AddLambdaJobs(options, new BatchOptions { DataRoot = fixture.NewDataRoot() });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var storage = host.Services.GetRequiredService<JobStorage>();
            var id = new BackgroundJobClient(storage).Enqueue<BatchRecomputeJob>(j => j.RunAsync(view.Name, CancellationToken.None));

            await JobsFixture.EventuallyAsync(() => Task.FromResult(storage.GetMonitoringApi().JobDetails(id)?.History.FirstOrDefault()?.StateName == "Succeeded"),
                "the enqueued job succeeded on PostgreSQL storage");

            // It really is in PostgreSQL: the job row and the recurring jobs registered at start-up.
            await using (var connection = new NpgsqlConnection(postgres.ConnectionString))
            {
                await connection.OpenAsync();
                await using var query = new NpgsqlCommand("SELECT statename FROM hangfire.job WHERE id = @id", connection);
                query.Parameters.AddWithValue("id", long.Parse(id, System.Globalization.CultureInfo.InvariantCulture));
                Assert.Equal("Succeeded", await query.ExecuteScalarAsync());
            }

            using var storageConnection = storage.GetConnection();
            Assert.Equal(
                [BatchRecomputeJob.RecurringId(view.Name), MasterCompactionJob.RecurringId, PipelineStateRetentionJob.RecurringId],
                storageConnection.GetRecurringJobs().Select(j => j.Id).Order(StringComparer.Ordinal));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
