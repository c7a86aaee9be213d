namespace ApiServer.Mcp;

/// <summary>MCP tool servers and approvals. Bound from the "Mcp" section; see the README's MCP section.</summary>
public sealed class McpOptions
{
    public const string SectionName = "Mcp";

    /// <summary>Path of the JSON file in the <c>{"mcpServers": {…}}</c> shape (AGENT_MCP_CONFIG). Empty: no MCP servers.</summary>
    public string Config { get; set; } = "";

    /// <summary>
    /// Comma list of URL prefixes a client may name as an MCP <c>server_url</c> (AGENT_MCP_CLIENT_URLS). Empty refuses every
    /// client-supplied URL: the server must never connect where a client says unless the operator allowed it.
    /// </summary>
    public string ClientUrls { get; set; } = "";

    /// <summary>
    /// Seconds to connect to a client-named MCP server and list its tools, and the limit of each of its tool calls
    /// (AGENT_MCP_CLIENT_TIMEOUT_SECONDS).
    /// </summary>
    [System.ComponentModel.DataAnnotations.Range(1, 600)]
    public int ClientTimeoutSeconds { get; set; } = 30;

    /// <summary>How long a run waits for an answer to an approval request before it counts as a denial (AGENT_APPROVAL_TIMEOUT_SECONDS).</summary>
    [System.ComponentModel.DataAnnotations.Range(1, int.MaxValue)]
    public int ApprovalTimeoutSeconds { get; set; } = 600;

    public IReadOnlyList<string> ClientUrlPrefixes =>
        ClientUrls.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
