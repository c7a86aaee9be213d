using ApiServer.Access;

namespace ApiServer.Mcp;

/// <summary>
/// An API key's tool policy applied to the tools that exist now. A tool is usable only when both of the policy's lists allow
/// it: <c>tools.allow</c> (server tools by name, built-in or MCP) and <c>tools.mcp_servers</c> (for an MCP tool, its server);
/// a list left out allows everything. A server the key may not use is hidden as if it were not configured: its tools are not
/// offered, run or listed, on every API and in GET /v1/tools.
/// </summary>
public sealed class KeyToolAccess(McpHub hub)
{
    /// <summary>Whether the key may use the MCP server named <paramref name="server"/>; every key may when no key or policy applies.</summary>
    public static bool AllowsServer(ApiKey? key, string server) => key?.Tools is not { } policy || policy.AllowsMcpServer(server);

    /// <summary>Whether the key may use the server tool <paramref name="name"/> (MCP tools also by their server).</summary>
    public bool AllowsTool(ApiKey? key, string name)
    {
        if (key?.Tools is not { } policy)
            return true;
        if (!policy.AllowsTool(name))
            return false;
        return policy.AllowedMcpServers is null || hub.Tools.FirstOrDefault(t => t.Definition.Name == name) is not { } mcp
            || policy.AllowsMcpServer(mcp.ServerLabel);
    }

    /// <summary>
    /// The server tools a turn of <paramref name="key"/> may use: the key's policy intersected with what the request already
    /// allows (<paramref name="narrowed"/>, null for all). Null when neither limits anything.
    /// </summary>
    public IReadOnlySet<string>? Allowed(ApiKey? key, IReadOnlyCollection<string> serverTools, IReadOnlySet<string>? narrowed)
    {
        if (key?.Tools is null)
            return narrowed;
        return serverTools.Where(n => AllowsTool(key, n) && (narrowed is null || narrowed.Contains(n))).ToHashSet(StringComparer.Ordinal);
    }
}
