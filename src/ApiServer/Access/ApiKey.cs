namespace ApiServer.Access;

/// <summary>
/// One configured key: who it is (<see cref="Name"/>, safe to log and store), the SHA-256 of its secret (the secret itself is
/// never kept), what it may call, and its limits.
/// </summary>
public sealed record ApiKey(string Name, byte[] Sha256, IReadOnlySet<string> Scopes, ToolPolicy? Tools, KeyLimits Limits)
{
    public bool Has(string scope) => Scopes.Contains(scope) || Scopes.Contains(ApiScopes.Admin);

    /// <summary>A stable id derived from the digest (never the secret): the first 128 bits, as idempotency scoping has always used.</summary>
    public string Id => "key-" + Convert.ToHexStringLower(Sha256.AsSpan(0, 16));
}

/// <summary>Per-key limits; null means unlimited.</summary>
public sealed record KeyLimits(int? RequestsPerMinute = null, int? TokensPerMinute = null, int? ConcurrentRuns = null)
{
    public static readonly KeyLimits None = new();
}

/// <summary>Which server tools (by name) and MCP servers (by name) a key's requests may use; null lists mean "all".</summary>
public sealed record ToolPolicy(IReadOnlySet<string>? AllowedTools, IReadOnlySet<string>? AllowedMcpServers)
{
    public bool AllowsTool(string name) => AllowedTools is null || AllowedTools.Contains(name);

    public bool AllowsMcpServer(string name) => AllowedMcpServers is null || AllowedMcpServers.Contains(name);
}
