namespace ApiServer.Access;

/// <summary>
/// The key a request authenticated with, for work that runs outside the request's HttpContext: a run executes on after its
/// POST has been answered, and the agent (which knows nothing of HTTP) reports token usage from there. An AsyncLocal flows
/// into that work because the work is started from the request.
/// </summary>
public static class CurrentKey
{
    private static readonly AsyncLocal<ApiKey?> Value = new();

    public static ApiKey? Key => Value.Value;

    internal static void Set(ApiKey? key) => Value.Value = key;

    /// <summary>The key the middleware authenticated on this request, or null when no key is configured.</summary>
    public static ApiKey? Of(HttpContext context) => context.Features.Get<ApiKey>();
}
