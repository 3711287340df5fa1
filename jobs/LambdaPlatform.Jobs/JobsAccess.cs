using System.Net;
using System.Security.Cryptography;
using System.Text;
using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;

namespace LambdaPlatform.Jobs;

/// <summary>What a request may do with the dashboard and the batch-run endpoint.</summary>
public enum JobsAccessLevel
{
    /// <summary>Nothing: the request is refused.</summary>
    Denied,

    /// <summary>Look at the dashboard, change nothing.</summary>
    ReadOnly,

    /// <summary>Everything: trigger, retry and delete jobs, run batches.</summary>
    Full,
}

/// <summary>
/// The access rule: a request the host authenticated (the platform's API keys), or bearing the configured
/// <see cref="JobsOptions.ApiKey"/> (header <c>X-Api-Key</c>), is authorised; without a configured key, a local request
/// is authorised. A local request that is not authorised sees a read-only dashboard;
/// any other request that is not authorised is refused.
/// </summary>
/// <remarks>
/// "Local" means the peer address is a loopback address or the server's own address. Behind a reverse proxy on the
/// same machine every request looks local: configure an API key there. Thread-safe.
/// </remarks>
public static class JobsAccess
{
    /// <summary>The access level of a request.</summary>
    /// <param name="remote">Peer address, or null when unknown (treated as not local).</param>
    /// <param name="local">The server's address the request came in on, or null.</param>
    /// <param name="presentedKey">Value of the <c>X-Api-Key</c> header, or null.</param>
    /// <param name="apiKey">The configured key (<see cref="JobsOptions.ApiKey"/>), or null.</param>
    public static JobsAccessLevel Evaluate(IPAddress? remote, IPAddress? local, string? presentedKey, string? apiKey)
    {
        if (apiKey is not null && presentedKey is not null && KeysEqual(presentedKey, apiKey))
        {
            return JobsAccessLevel.Full;
        }

        if (!IsLocal(remote, local))
        {
            return JobsAccessLevel.Denied;
        }

        return apiKey is null ? JobsAccessLevel.Full : JobsAccessLevel.ReadOnly;
    }

    /// <summary>
    /// The access level of an HTTP request under <paramref name="options"/>. A request that the host's own
    /// authentication has authenticated (e.g. with one of the platform's API keys) has <see cref="JobsAccessLevel.Full"/>
    /// access; otherwise <see cref="Evaluate(IPAddress?, IPAddress?, string?, string?)"/> decides.
    /// </summary>
    public static JobsAccessLevel Evaluate(HttpContext context, JobsOptions options)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        if (context.User.Identity?.IsAuthenticated == true)
        {
            return JobsAccessLevel.Full;
        }

        var presented = context.Request.Headers.TryGetValue(JobsOptions.ApiKeyHeader, out var values) && values.Count == 1 ? values[0] : null;
        return Evaluate(context.Connection.RemoteIpAddress, context.Connection.LocalIpAddress, presented, options.ApiKey);
    }

    private static bool IsLocal(IPAddress? remote, IPAddress? local)
    {
        if (remote is null)
        {
            return false;
        }

        remote = remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote;
        local = local is { IsIPv4MappedToIPv6: true } ? local.MapToIPv4() : local;
        return IPAddress.IsLoopback(remote) || remote.Equals(local);
    }

    // Constant time, so the key cannot be guessed byte by byte from response times.
    private static bool KeysEqual(string presented, string expected) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected));
}

/// <summary>Hangfire dashboard filter applying <see cref="JobsAccess"/>: lets in every request that is not <see cref="JobsAccessLevel.Denied"/>.</summary>
internal sealed class JobsDashboardAuthorization(JobsOptions options) : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context) => Level(context, options) != JobsAccessLevel.Denied;

    public static JobsAccessLevel Level(DashboardContext context, JobsOptions options) =>
        JobsAccess.Evaluate(context.GetHttpContext(), options);
}
