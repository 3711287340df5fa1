using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LambdaPlatform.Serving;

/// <summary>
/// Limits of the HTTP API against oversized requests and slow clients (slowloris, trickled bodies). Applied to Kestrel
/// by <see cref="ApplyTo"/>, and per endpoint by <see cref="ServingApi.UseServingApi"/>. Validated by <see cref="Validate"/>.
/// </summary>
public sealed record HttpLimits
{
    /// <summary>Largest body of <c>POST /v1/sql</c>, in bytes. Default 1 MiB. A larger body gets 413.</summary>
    public long MaxSqlBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest body of any other request, in bytes. Default 1 MiB. A larger body gets 413.</summary>
    public long MaxRequestBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Longest time a client may take to send the request line and headers (Kestrel's <c>RequestHeadersTimeout</c>). Default 10 s.</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an idle keep-alive connection stays open (Kestrel's <c>KeepAliveTimeout</c>). Default 60 s.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Slowest accepted request body, in bytes per second, after <see cref="MinRequestBodyGracePeriod"/> (Kestrel's <c>MinRequestBodyDataRate</c>). Default 240.</summary>
    public double MinRequestBodyBytesPerSecond { get; init; } = 240;

    /// <summary>Time a body may start slower than <see cref="MinRequestBodyBytesPerSecond"/>. Default 5 s.</summary>
    public TimeSpan MinRequestBodyGracePeriod { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Open connections Kestrel accepts at once; further ones are closed at once. Default 1,000.</summary>
    public long MaxConcurrentConnections { get; init; } = 1_000;

    /// <summary>Throws naming the first invalid setting.</summary>
    /// <returns>This instance.</returns>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public HttpLimits Validate()
    {
        if (MaxSqlBodyBytes is < 1024 or > 1024L * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxSqlBodyBytes), MaxSqlBodyBytes, "HttpLimits.MaxSqlBodyBytes must be between 1 KiB and 1 GiB");
        }

        if (MaxRequestBodyBytes is < 1024 or > 1024L * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRequestBodyBytes), MaxRequestBodyBytes, "HttpLimits.MaxRequestBodyBytes must be between 1 KiB and 1 GiB");
        }

        if (RequestHeadersTimeout < TimeSpan.FromSeconds(1) || RequestHeadersTimeout > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentOutOfRangeException(nameof(RequestHeadersTimeout), RequestHeadersTimeout, "HttpLimits.RequestHeadersTimeout must be between 1 s and 10 min");
        }

        if (KeepAliveTimeout < TimeSpan.FromSeconds(1) || KeepAliveTimeout > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(KeepAliveTimeout), KeepAliveTimeout, "HttpLimits.KeepAliveTimeout must be between 1 s and 1 hour");
        }

        if (MinRequestBodyBytesPerSecond is < 1 or > 1_000_000_000 || double.IsNaN(MinRequestBodyBytesPerSecond))
        {
            throw new ArgumentOutOfRangeException(nameof(MinRequestBodyBytesPerSecond), MinRequestBodyBytesPerSecond, "HttpLimits.MinRequestBodyBytesPerSecond must be between 1 and 1e9");
        }

        if (MinRequestBodyGracePeriod < TimeSpan.FromSeconds(1) || MinRequestBodyGracePeriod > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentOutOfRangeException(nameof(MinRequestBodyGracePeriod), MinRequestBodyGracePeriod, "HttpLimits.MinRequestBodyGracePeriod must be between 1 s and 10 min (Kestrel checks once a second)");
        }

        if (MaxConcurrentConnections is < 1 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrentConnections), MaxConcurrentConnections, "HttpLimits.MaxConcurrentConnections must be between 1 and 1,000,000");
        }

        return this;
    }

    /// <summary>Sets Kestrel's limits from these settings (also turns off the <c>Server</c> header).</summary>
    public void ApplyTo(KestrelServerOptions kestrel)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        Validate();
        kestrel.AddServerHeader = false;
        kestrel.Limits.MaxRequestBodySize = MaxRequestBodyBytes;
        kestrel.Limits.RequestHeadersTimeout = RequestHeadersTimeout;
        kestrel.Limits.KeepAliveTimeout = KeepAliveTimeout;
        kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(MinRequestBodyBytesPerSecond, MinRequestBodyGracePeriod);
        kestrel.Limits.MaxConcurrentConnections = MaxConcurrentConnections;
        kestrel.Limits.MaxConcurrentUpgradedConnections = MaxConcurrentConnections;
    }

    /// <summary>The 413 answer for a body over <paramref name="limit"/> bytes.</summary>
    internal static IResult TooLarge(long limit, long? length) => Results.Problem(
        title: "request body too large",
        detail: length is { } n
            ? string.Create(CultureInfo.InvariantCulture, $"the request body is {n} bytes; it must be at most {limit} bytes")
            : string.Create(CultureInfo.InvariantCulture, $"the request body must be at most {limit} bytes"),
        statusCode: StatusCodes.Status413PayloadTooLarge,
        extensions: new Dictionary<string, object?> { ["field"] = "body", ["limitBytes"] = limit });
}

/// <summary>Endpoint metadata: the largest body this endpoint takes, in bytes (<see cref="IRequestSizeLimitMetadata"/>).</summary>
/// <param name="MaxRequestBodySize">The limit in bytes.</param>
internal sealed record BodySizeLimit(long? MaxRequestBodySize) : IRequestSizeLimitMetadata;

/// <summary>
/// Applies an endpoint's <see cref="IRequestSizeLimitMetadata"/> to the request, and answers 413 with a problem body
/// when the declared <c>Content-Length</c> is over the limit, before anything reads the body. (A chunked body that
/// grows past the limit is cut off by Kestrel while it is read.)
/// </summary>
internal static class BodySizeLimits
{
    public static async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var feature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is not null && context.GetEndpoint()?.Metadata.GetMetadata<IRequestSizeLimitMetadata>() is { } metadata && !feature.IsReadOnly)
        {
            feature.MaxRequestBodySize = metadata.MaxRequestBodySize;
        }

        if (feature?.MaxRequestBodySize is { } limit && context.Request.ContentLength is { } length && length > limit)
        {
            // Do not keep the connection: the client may be about to send the whole body.
            context.Response.Headers.Connection = "close";
            await HttpLimits.TooLarge(limit, length).ExecuteAsync(context);
            return;
        }

        await next(context);
    }
}
