using ApiServer.Access;

namespace ApiServer.Http;

/// <summary>
/// Bearer-key auth for every /v1 and /api route except the health probes, and for /metrics: the key must be one the
/// <see cref="ApiKeyRing"/> knows (401 otherwise) and have the scope of the route's group (403 otherwise).
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKeyRing keys)
{
    public const string MissingScopeCode = "insufficient_scope";

    public Task InvokeAsync(HttpContext context)
    {
        if (!keys.Enabled || !RequiresAuth(context.Request.Path))
            return next(context);
        if (Presented(context.Request) is not { } presented || keys.Authenticate(presented) is not var (key, principal))
            return ErrorWriter.WriteAsync(context, StatusCodes.Status401Unauthorized, "Invalid API key", code: "invalid_api_key");
        context.User = principal;
        context.Features.Set(key);
        if (ApiScopes.For(context.Request.Path) is { } scope && !key.Has(scope))
            return ErrorWriter.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"The API key \"{key.Name}\" does not have the \"{scope}\" scope this route needs. Ask the server's operator to add it in API_SERVER_KEYS_FILE.",
                code: MissingScopeCode, type: "permission_error");
        return next(context);
    }

    public static bool RequiresAuth(PathString path) =>
        ((path.StartsWithSegments("/v1") || path.StartsWithSegments("/api")) && !path.StartsWithSegments("/v1/health"))
        || path.StartsWithSegments("/metrics");

    /// <summary>
    /// Whether the request presents a key the ring knows, for open routes that show more to a key holder (/health/detailed).
    /// With no keys configured the server is open, so every caller counts.
    /// </summary>
    public static bool IsKeyHolder(HttpRequest request, ApiKeyRing keys) =>
        !keys.Enabled || (Presented(request) is { } presented && keys.Authenticate(presented) is not null);

    private static string? Presented(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        return header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : null;
    }
}
