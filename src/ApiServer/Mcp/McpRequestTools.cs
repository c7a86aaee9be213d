using System.Text.Json;
using ApiServer.Http;

namespace ApiServer.Mcp;

/// <summary>
/// The <c>{"type": "mcp", …}</c> entries of a Responses request's <c>tools</c>: they narrow the turn to the named configured
/// servers (and their <c>allowed_tools</c>). Function tools are parsed elsewhere (ToolParsing skips these).
/// </summary>
public static class McpRequestTools
{
    private static readonly HashSet<string> Keys = ["type", "server_label", "server_url", "allowed_tools", "require_approval", "server_description", "headers"];

    public static bool IsMcp(JsonElement tool) =>
        tool.ValueKind == JsonValueKind.Object && tool.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "mcp";

    /// <summary>
    /// The filter for the turn's server tools, or null when the request names no MCP server (then every configured tool is offered).
    /// Throws a 400 for an unknown label, a client URL the operator did not allow, or a bad field. A server the calling key may not
    /// use (<paramref name="serverVisible"/>) is answered exactly as one that is not configured.
    /// </summary>
    public static Func<string, bool>? Narrow(IReadOnlyList<JsonElement> tools, McpHub hub, McpOptions options, Func<string, bool> serverVisible)
    {
        var allowed = new Dictionary<string, HashSet<string>?>(StringComparer.Ordinal);
        for (var i = 0; i < tools.Count; i++)
        {
            if (!IsMcp(tools[i]))
                continue;
            var param = $"tools[{i}]";
            var tool = tools[i];
            foreach (var property in tool.EnumerateObject().Where(p => !Keys.Contains(p.Name)))
                throw ApiException.BadRequest($"Unknown field '{property.Name}' in an mcp tool; known: {string.Join(", ", Keys)}.", $"{param}.{property.Name}", "unknown_parameter");
            var label = tool.GetString("server_label", $"{param}.server_label")
                ?? throw ApiException.BadRequest($"'{param}.server_label' is required.", $"{param}.server_label", "missing_required_parameter");
            if (tool.GetString("server_url", $"{param}.server_url") is { } url)
                RefuseClientUrl(url, options, $"{param}.server_url");
            if (tool.Get("headers") is not null)
                throw ApiException.BadRequest("'headers' only go with 'server_url'; configured servers use the headers in AGENT_MCP_CONFIG.", $"{param}.headers", "unsupported_parameter");
            CheckApproval(tool, $"{param}.require_approval");
            if (hub.Servers.FirstOrDefault(s => s.Config.Name == label && s.Config.Enabled && serverVisible(label)) is null)
            {
                var known = string.Join(", ", hub.Servers.Where(s => s.Config.Enabled && serverVisible(s.Config.Name)).Select(s => s.Config.Name));
                throw ApiException.BadRequest(
                    $"No MCP server is configured with server_label '{label}'. {(known.Length == 0 ? "This server has none (AGENT_MCP_CONFIG)." : $"Configured: {known}.")}",
                    $"{param}.server_label", "unknown_mcp_server");
            }
            allowed[label] = AllowedTools(tool, $"{param}.allowed_tools");
        }
        if (allowed.Count == 0)
            return null;
        return name =>
        {
            var tool = hub.Tools.FirstOrDefault(t => t.Definition.Name == name);
            if (tool is null)
                return true; // a built-in tool: mcp entries narrow MCP servers only
            return allowed.TryGetValue(tool.ServerLabel, out var names) && (names is null || names.Contains(tool.ToolName));
        };
    }

    private static void RefuseClientUrl(string url, McpOptions options, string param)
    {
        if (!options.ClientUrlPrefixes.Any(prefix => url.StartsWith(prefix, StringComparison.Ordinal)))
            throw ApiException.BadRequest(
                "This server does not connect to MCP servers a client names: use a server_label the operator configured (GET /v1/tools lists them), or ask the operator to allow the URL in AGENT_MCP_CLIENT_URLS.",
                param, "server_url_not_allowed");
        throw ApiException.BadRequest("Connecting to a client-supplied MCP server_url is not supported yet; use a server_label the operator configured.", param, "unsupported_parameter");
    }

    /// <summary>Approvals can only be added, never removed, and this server cannot ask for them yet: only "never" (no change) is accepted.</summary>
    private static void CheckApproval(JsonElement tool, string param)
    {
        if (tool.Get("require_approval") is not { } value)
            return;
        if (value.ValueKind == JsonValueKind.String && value.GetString() == "never")
            return;
        throw ApiException.BadRequest(
            "require_approval: this server cannot ask for approvals on /v1/responses yet; omit it or send \"never\" (tools the operator's config marks as needing approval are still not run).",
            param, "unsupported_parameter");
    }

    private static HashSet<string>? AllowedTools(JsonElement tool, string param)
    {
        if (tool.Get("allowed_tools") is not { } value)
            return null;
        if (value.ValueKind == JsonValueKind.Object)
            value = value.Get("tool_names") ?? throw ApiException.BadRequest($"'{param}.tool_names' is required.", $"{param}.tool_names", "missing_required_parameter");
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
            throw JsonRequest.WrongType(param, "an array of tool names or {\"tool_names\": [...]}");
        return [.. value.EnumerateArray().Select(v => v.GetString()!)];
    }
}
