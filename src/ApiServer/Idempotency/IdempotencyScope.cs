using ApiServer.Http;
using Microsoft.AspNetCore.Routing;

namespace ApiServer.Idempotency;

/// <summary>
/// Where an Idempotency-Key is unique: the route that handles the request (however its path was spelled) and the principal that
/// authenticated (however its Authorization header was spelled). <see cref="Principal"/> is a stored id, never a credential.
/// </summary>
public readonly record struct IdempotencyScope(string Route, string Principal)
{
    /// <summary>The principal of every request when no API key is configured: the server tells no callers apart then.</summary>
    public const string Anonymous = "anonymous";

    /// <summary>The POST routes whose answers are recorded, as their route patterns.</summary>
    public static readonly IReadOnlySet<string> Routes = TurnRoutes.All;

    /// <summary>The scope of a POST to an idempotent route, or null for any other request.</summary>
    public static IdempotencyScope? For(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method))
            return null;
        // Routing already matched case-insensitively and without a trailing slash; its pattern is the route's one spelling.
        var route = Normalize(context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } pattern } ? pattern : context.Request.Path.Value);
        return Routes.Contains(route) ? new IdempotencyScope(route, ApiPrincipal.IdOf(context.User) ?? Anonymous) : null;
    }

    private static string Normalize(string? path) => (path ?? "").TrimEnd('/').ToLowerInvariant();
}
