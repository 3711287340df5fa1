using Hangfire;
using LambdaPlatform.Batch.Recompute;
using LambdaPlatform.ClickHouse;
using LambdaPlatform.Schemas.Views;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LambdaPlatform.Jobs.Tests;

/// <summary>A real ASP.NET Core host (Kestrel on 127.0.0.1, a free port) with the jobs added as <c>lambda up</c> would.</summary>
public sealed class TestHost : IAsyncDisposable
{
    private TestHost(WebApplication app, Uri address)
    {
        App = app;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
    }

    public WebApplication App { get; }

    public HttpClient Http { get; }

    public JobStorage Storage => App.Services.GetRequiredService<JobStorage>();

    public static async Task<TestHost> StartAsync(IClickHouse clickHouse, IReadOnlyList<ViewDefinition> views, JobsOptions options, string dataRoot, TimeProvider clock)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton(clock);
        builder.Services.AddSingleton(clickHouse);
        builder.Services.AddSingleton(views);
        builder.Services.AddLambdaJobs(options, new BatchOptions { DataRoot = dataRoot });
        var app = builder.Build();
        app.MapLambdaJobs();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new TestHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
