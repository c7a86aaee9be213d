using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Http;

/// <summary>
/// Browser origins are refused unless allow-listed. Headers are set before the handler runs,
/// so they are on the wire before the first byte of a streaming response.
/// </summary>
public sealed class CorsMiddleware(RequestDelegate next, IOptions<ApiServerOptions> options)
{
    public const string AllowMethods = "GET, POST, DELETE, OPTIONS";
    public const string AllowHeaders = "Authorization, Content-Type, Idempotency-Key, X-Session-Id, Last-Event-ID, X-Agent-Tool-Events, OpenAI-Organization, OpenAI-Project";
    public const string ExposeHeaders = "X-Session-Id, X-Request-Id, Idempotent-Replayed, Retry-After";

    // Configured origins are validated at startup and compared in the form browsers send (lower case, no default port),
    // so "https://Chat.Example.com:443" matches the Origin header "https://chat.example.com".
    private readonly HashSet<string> _origins = options.Value.CorsOriginList
        .Select(o => o == "*" ? o : CorsOrigin.Normalize(o) ?? o).ToHashSet(StringComparer.Ordinal);

    public Task InvokeAsync(HttpContext context)
    {
        var origin = context.Request.Headers.Origin.ToString();
        var isPreflight = HttpMethods.IsOptions(context.Request.Method);
        if (origin.Length == 0)
        {
            // Not a browser (curl, SDKs). A preflight without an Origin is meaningless; answer it plainly.
            if (isPreflight)
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return Task.CompletedTask;
            }
            return next(context);
        }

        var allowAny = _origins.Contains("*");
        if (!allowAny && !_origins.Contains(origin))
        {
            return ErrorWriter.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"Origin '{origin}' is not allowed. Add it to API_SERVER_CORS_ORIGINS.", code: "origin_not_allowed",
                type: "permission_error");
        }

        var headers = context.Response.Headers;
        headers.AccessControlAllowOrigin = allowAny ? "*" : origin;
        headers.Vary = "Origin";
        headers.AccessControlMaxAge = "600";
        headers.AccessControlAllowMethods = AllowMethods;
        headers.AccessControlAllowHeaders = AllowHeaders;
        headers.AccessControlExposeHeaders = ExposeHeaders;
        if (isPreflight)
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            return Task.CompletedTask;
        }
        return next(context);
    }
}
