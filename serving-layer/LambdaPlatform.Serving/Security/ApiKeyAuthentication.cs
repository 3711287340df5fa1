using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LambdaPlatform.Serving.Security;

/// <summary>
/// API-key authentication on ASP.NET Core's own authentication and authorization: a key is accepted in
/// <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-Api-Key: &lt;key&gt;</c>. With keys configured, every endpoint
/// needs one (authorization fallback policy) except those marked <c>AllowAnonymous</c> (<c>/health</c>); a request
/// without a valid key gets 401 with a short problem+json body. Without keys nothing is required.
/// </summary>
public static class ApiKeyAuthentication
{
    /// <summary>Name of the authentication scheme: <c>ApiKey</c>.</summary>
    public const string Scheme = "ApiKey";

    /// <summary>Header that may carry the key: <c>X-Api-Key</c>.</summary>
    public const string HeaderName = "X-Api-Key";

    /// <summary>
    /// Registers the scheme and, when the container's <see cref="ApiKeys"/> (default <see cref="ApiKeys.None"/>) holds
    /// keys, an authorization fallback policy that requires one on every endpoint not marked <c>AllowAnonymous</c>.
    /// </summary>
    public static IServiceCollection AddApiKeyAuthentication(this IServiceCollection services)
    {
        services.TryAddSingleton(ApiKeys.None);
        // The core services only: AddAuthentication would also add data protection, which writes key files to disk
        // and is not needed here (no cookies, no tokens issued).
        services.AddAuthenticationCore(options =>
        {
            options.AddScheme<ApiKeyAuthenticationHandler>(Scheme, null);
            options.DefaultScheme = Scheme;
        });
        services.TryAddTransient<ApiKeyAuthenticationHandler>();

        // ASP.NET Core logs every failed or challenged authentication at Information; with keys required that is a
        // line per stray request, which lets anyone flood the log. Failures are in the metrics (401 responses) instead.
        services.AddLogging(logging => logging.AddFilter(typeof(ApiKeyAuthenticationHandler).FullName, LogLevel.Warning));
        services.AddAuthorization();
        services.AddOptions<AuthorizationOptions>().Configure<ApiKeys>((options, keys) =>
        {
            if (!keys.IsEmpty)
            {
                options.FallbackPolicy = new AuthorizationPolicyBuilder(Scheme).RequireAuthenticatedUser().Build();
            }
        });
        return services;
    }

    /// <summary>The key a request presents (<c>X-Api-Key</c> first, then a bearer token), or null.</summary>
    public static string? PresentedKey(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Headers.TryGetValue(HeaderName, out var apiKey))
        {
            return apiKey.Count == 1 ? apiKey[0] : null;
        }

        var authorization = request.Headers.Authorization;
        if (authorization.Count != 1 || authorization[0] is not { } value)
        {
            return null;
        }

        const string bearer = "Bearer ";
        return value.StartsWith(bearer, StringComparison.OrdinalIgnoreCase) ? value[bearer.Length..].Trim() : null;
    }
}

/// <summary>Checks the presented key against <see cref="ApiKeys"/>; the key itself is never logged or echoed.</summary>
internal sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, ApiKeys keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, UrlEncoder.Default)
{
    private const string Hint = "send an API key as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (keys.IsEmpty)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var presented = ApiKeyAuthentication.PresentedKey(Request);
        if (presented is null)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!keys.Matches(presented))
        {
            return Task.FromResult(AuthenticateResult.Fail("the API key is not valid"));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-key")], ApiKeyAuthentication.Scheme);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), ApiKeyAuthentication.Scheme)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.Headers.WWWAuthenticate = "Bearer";
        var detail = result.Failure is null ? $"this endpoint needs an API key: {Hint}" : $"the API key is not valid: {Hint}";
        await Results.Problem(title: "API key required", detail: detail, statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Results.Problem(title: "forbidden", statusCode: StatusCodes.Status403Forbidden).ExecuteAsync(Context);
}
