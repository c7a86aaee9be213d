using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;

namespace ApiServer.Http;

/// <summary>
/// Who a request authenticated as, set on <see cref="HttpContext.User"/> by <see cref="ApiKeyMiddleware"/>. The id is stable
/// and safe to store (derived from the key, never the key itself), so per-caller state such as idempotency records can be
/// scoped by it; the name is for people (one key today: "default").
/// </summary>
public static class ApiPrincipal
{
    public const string AuthenticationType = "ApiKey";

    public static ClaimsPrincipal ForKey(string key, string name = "default") =>
        new(new ClaimsIdentity(
            [new Claim(ClaimTypes.NameIdentifier, IdOf(key)), new Claim(ClaimTypes.Name, name)],
            AuthenticationType));

    /// <summary>The principal's stored id, or null when the request did not authenticate (no key is configured).</summary>
    public static string? IdOf(ClaimsPrincipal user) =>
        user.Identity?.AuthenticationType == AuthenticationType ? user.FindFirst(ClaimTypes.NameIdentifier)?.Value : null;

    // 128 bits of SHA-256 name the key without revealing it.
    private static string IdOf(string key) => "key-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)).AsSpan(0, 16));
}
