using System.Security.Claims;
using ApiServer.Access;

namespace ApiServer.Http;

/// <summary>
/// Who a request authenticated as, set on <see cref="HttpContext.User"/> by <see cref="ApiKeyMiddleware"/>. The id is stable
/// and safe to store (derived from the key's digest, never the key itself), so per-caller state such as idempotency records can
/// be scoped by it; the name is the key's name from the key file ("default" for API_SERVER_KEY), safe to log and to own objects.
/// </summary>
public static class ApiPrincipal
{
    public const string AuthenticationType = "ApiKey";
    public const string ScopeClaim = "scope";

    public static ClaimsPrincipal ForKey(ApiKey key) =>
        new(new ClaimsIdentity(
            [new Claim(ClaimTypes.NameIdentifier, key.Id), new Claim(ClaimTypes.Name, key.Name),
             .. key.Scopes.Select(s => new Claim(ScopeClaim, s))],
            AuthenticationType));

    /// <summary>The principal's stored id, or null when the request did not authenticate (no key is configured).</summary>
    public static string? IdOf(ClaimsPrincipal user) =>
        user.Identity?.AuthenticationType == AuthenticationType ? user.FindFirst(ClaimTypes.NameIdentifier)?.Value : null;

    /// <summary>The key's name, or null when the request did not authenticate (no key is configured).</summary>
    public static string? NameOf(ClaimsPrincipal user) =>
        user.Identity?.AuthenticationType == AuthenticationType ? user.FindFirst(ClaimTypes.Name)?.Value : null;

    /// <summary>True when the key has the scope, or admin (which has every scope); always true when no key is configured.</summary>
    public static bool Has(ClaimsPrincipal user, string scope) =>
        user.Identity?.AuthenticationType != AuthenticationType
        || user.HasClaim(ScopeClaim, scope) || user.HasClaim(ScopeClaim, ApiScopes.Admin);
}
