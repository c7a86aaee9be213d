using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Http;

/// <summary>Bearer-key auth for every /v1 and /api route except the health probes.</summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, IOptions<ApiServerOptions> options)
{
    // Hashing both sides first makes the comparison constant-time in the key's length as well as its content.
    private readonly byte[]? _keyHash = options.Value.AuthEnabled ? SHA256.HashData(Encoding.UTF8.GetBytes(options.Value.Key)) : null;

    // One instance for every request: nothing mutates it.
    private readonly ClaimsPrincipal? _principal = options.Value.AuthEnabled ? ApiPrincipal.ForKey(options.Value.Key) : null;

    public Task InvokeAsync(HttpContext context)
    {
        if (_keyHash is null || !RequiresAuth(context.Request.Path))
            return next(context);
        if (!IsAuthorized(context.Request))
            return ErrorWriter.WriteAsync(context, StatusCodes.Status401Unauthorized, "Invalid API key", code: "invalid_api_key");
        context.User = _principal!;
        return next(context);
    }

    public static bool RequiresAuth(PathString path) =>
        (path.StartsWithSegments("/v1") || path.StartsWithSegments("/api")) && !path.StartsWithSegments("/v1/health");

    private bool IsAuthorized(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _keyHash);
    }
}
