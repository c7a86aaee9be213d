using System.Security.Claims;
using ApiServer.Http;

namespace ApiServer.Access;

/// <summary>
/// Whose stored objects a caller may see. Every stored object records the name of the key that created it ("" when no key is
/// configured, so a loopback-only server keeps one anonymous owner). A key with the admin scope sees every owner's objects;
/// any other key sees only its own, and another owner's object must be answered exactly as an id that does not exist.
/// </summary>
public readonly record struct Owner(string Name, bool SeesAll)
{
    public static Owner Anonymous { get; } = new("", SeesAll: false);

    /// <summary>The owner of a request, from the principal the key middleware set.</summary>
    public static Owner Of(ClaimsPrincipal user) =>
        ApiPrincipal.NameOf(user) is { } name
            ? new Owner(name, user.HasClaim(ApiPrincipal.ScopeClaim, ApiScopes.Admin))
            : Anonymous;

    public static Owner Of(HttpContext context) => Of(context.User);

    /// <summary>The owner of work running outside a request (a run, a job firing), from the key it was started with.</summary>
    public static Owner Of(ApiKey? key) => key is null ? Anonymous : new Owner(key.Name, key.Scopes.Contains(ApiScopes.Admin));

    /// <summary>True when this caller may see an object stored with <paramref name="storedOwner"/>.</summary>
    public bool Owns(string? storedOwner) => SeesAll || string.Equals(storedOwner ?? "", Name, StringComparison.Ordinal);
}
