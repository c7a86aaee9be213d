namespace ApiServer.Access;

/// <summary>
/// The route groups a key may call, and which group a path belongs to. One table, so a new route group is a new row here
/// (the scope matrix test fails for a route this table does not place).
/// </summary>
public static class ApiScopes
{
    public const string Chat = "chat";
    public const string Responses = "responses";
    public const string Runs = "runs";
    public const string Jobs = "jobs";
    public const string Tools = "tools";
    public const string Admin = "admin";
    public const string Metrics = "metrics";

    public static readonly IReadOnlyList<string> All = [Chat, Responses, Runs, Jobs, Tools, Admin, Metrics];

    /// <summary>Path prefixes and the scope each needs; null means any valid key (listing models is what every client does first).</summary>
    private static readonly (string Prefix, string? Scope)[] Routes =
    [
        ("/v1/chat", Chat),
        ("/v1/responses", Responses),
        ("/v1/conversations", Responses),
        ("/v1/runs", Runs),
        ("/api/jobs", Jobs),
        ("/v1/tools", Tools),
        ("/metrics", Metrics),
        ("/v1/models", null),
    ];

    /// <summary>The scope a request path needs. A /v1 or /api path no row places needs admin, so a new route is closed until placed.</summary>
    public static string? For(PathString path)
    {
        foreach (var (prefix, scope) in Routes)
        {
            if (path.StartsWithSegments(prefix, StringComparison.OrdinalIgnoreCase))
                return scope;
        }
        return Admin;
    }

    /// <summary>True when a row of the table places this path (the rest fall back to admin).</summary>
    public static bool IsPlaced(PathString path) =>
        Routes.Any(r => path.StartsWithSegments(r.Prefix, StringComparison.OrdinalIgnoreCase));
}
