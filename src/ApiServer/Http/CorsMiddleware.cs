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
    /// <summary>
    /// Our own headers, and every header the official SDKs send from a browser (openai-node's platform, retry and helper
    /// headers; the x-stainless-* family is also matched by prefix below, so a header the SDK adds later is not refused).
    /// </summary>
    public const string AllowHeaders = "Authorization, Content-Type, Accept, Idempotency-Key, X-Session-Id, Last-Event-ID, X-Agent-Tool-Events, " +
        "OpenAI-Organization, OpenAI-Project, OpenAI-Beta, X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, X-Stainless-Package-Version, " +
        "X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Timeout, X-Stainless-Helper-Method, " +
        "X-Stainless-Poll-Helper, X-Stainless-Custom-Poll-Interval, X-Stainless-Async";

    private const string StainlessPrefix = "x-stainless-";

    private static readonly HashSet<string> Listed = new(AllowHeaders.Split(", "), StringComparer.OrdinalIgnoreCase);
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

        // Browsers send Origin on same-origin POSTs too (Swagger UI at /swagger calling this server): that is not cross-origin.
        // Only where the Host can't be an attacker's name: with a key every request must authenticate anyway, and without one
        // (loopback only) a rebound DNS name would make an attacker's page "same-origin", so the Host must be a loopback literal.
        if (!isPreflight && IsSameOrigin(origin, context.Request) && (options.Value.AuthEnabled || IsLoopbackHost(context.Request.Host)))
            return next(context);

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
        headers.AccessControlAllowHeaders = isPreflight ? AllowedHeadersFor(context.Request.Headers.AccessControlRequestHeaders.ToString()) : AllowHeaders;
        headers.AccessControlExposeHeaders = ExposeHeaders;
        if (isPreflight)
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            return Task.CompletedTask;
        }
        return next(context);
    }

    /// <summary>
    /// The Origin names this server's own host and port. The scheme is not compared: behind a TLS-terminating proxy the page is
    /// https while the request reaches us as http, and a scheme change on the same host is not another site's page.
    /// </summary>
    private static bool IsSameOrigin(string origin, HttpRequest request) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri) && request.Host.HasValue
        && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);

    private static bool IsLoopbackHost(HostString host) =>
        string.Equals(host.Host, "localhost", StringComparison.OrdinalIgnoreCase)
        || System.Net.IPAddress.TryParse(host.Host.Trim('[', ']'), out var address) && System.Net.IPAddress.IsLoopback(address);

    /// <summary>The fixed list, plus any requested x-stainless-* header it does not name yet.</summary>
    private static string AllowedHeadersFor(string requested)
    {
        string? extra = null;
        foreach (var range in requested.AsSpan().Split(','))
        {
            var name = requested.AsSpan(range).Trim();
            if (name.StartsWith(StainlessPrefix, StringComparison.OrdinalIgnoreCase) && IsToken(name)
                && !Listed.Contains(name.ToString()))
                extra = extra is null ? name.ToString() : $"{extra}, {name}";
        }
        return extra is null ? AllowHeaders : $"{AllowHeaders}, {extra}";
    }

    private static bool IsToken(ReadOnlySpan<char> name)
    {
        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                return false;
        }
        return true;
    }
}
