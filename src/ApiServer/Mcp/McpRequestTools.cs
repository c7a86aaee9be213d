using System.Text.Json;
using ApiServer.Http;

namespace ApiServer.Mcp;

/// <summary>
/// The <c>{"type": "mcp", …}</c> entries of a Responses request's <c>tools</c>: they narrow the turn to the named configured
/// servers (and their <c>allowed_tools</c>), and name servers to connect to for this turn by <c>server_url</c> (McpClientUrls). Function tools are parsed elsewhere (ToolParsing skips these).
/// </summary>
public static class McpRequestTools
{
    private static readonly HashSet<string> Keys = ["type", "server_label", "server_url", "allowed_tools", "require_approval", "server_description", "headers"];

    public static bool IsMcp(JsonElement tool) =>
        tool.ValueKind == JsonValueKind.Object && tool.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "mcp";

    /// <summary>
    /// The request's tools as the Response echoes (and stores) them: an mcp tool's <c>headers</c> are left out, they usually
    /// carry a token for that server only.
    /// </summary>
    public static IReadOnlyList<JsonElement> WithoutHeaders(IReadOnlyList<JsonElement> tools) =>
        [.. tools.Select(t => IsMcp(t) && t.TryGetProperty("headers", out _)
            ? JsonSerializer.SerializeToElement(t.EnumerateObject().Where(p => p.Name != "headers").ToDictionary(p => p.Name, p => p.Value), McpRequestJson.Default.DictionaryStringJsonElement)
            : t)];

    /// <summary>
    /// The turn's server-tool filter (null when the request names no MCP server: every configured tool is offered) and the
    /// tools it wants approved on top of the operator's config, and the servers named by URL. Throws a 400 for an unknown label, a client URL the operator did
    /// not allow, or a bad field. A server the calling key may not use (<paramref name="serverVisible"/>) is answered exactly as
    /// one that is not configured.
    /// </summary>
    public static McpRequestScope Parse(IReadOnlyList<JsonElement> tools, McpHub hub, McpOptions options, Func<string, bool> serverVisible)
    {
        var allowed = new Dictionary<string, HashSet<string>?>(StringComparer.Ordinal);
        var approval = new Dictionary<string, McpApprovalPolicy>(StringComparer.Ordinal);
        var clients = new List<McpServerConfig>();
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
            var policy = ParseApproval(tool, $"{param}.require_approval");
            if (tool.GetString("server_url", $"{param}.server_url") is { } url)
            {
                // A key limited to some MCP servers may name a URL only under one of their labels.
                if (!serverVisible(label))
                    throw ApiException.BadRequest($"This API key may not use an MCP server labelled '{label}'.", $"{param}.server_label", "server_url_not_allowed");
                clients.Add(McpClientUrls.Parse(tool, label, url, policy, AllowedTools(tool, $"{param}.allowed_tools"), options, param,
                    taken: name => hub.Servers.Any(s => s.Config.Name == name) || allowed.ContainsKey(name) || clients.Any(c => c.Name == name)));
                continue;
            }
            if (tool.Get("headers") is not null)
                throw ApiException.BadRequest("'headers' only go with 'server_url'; configured servers use the headers in AGENT_MCP_CONFIG.", $"{param}.headers", "unsupported_parameter");
            if (hub.Servers.FirstOrDefault(s => s.Config.Name == label && s.Config.Enabled && serverVisible(label)) is null)
            {
                var known = string.Join(", ", hub.Servers.Where(s => s.Config.Enabled && serverVisible(s.Config.Name)).Select(s => s.Config.Name));
                throw ApiException.BadRequest(
                    $"No MCP server is configured with server_label '{label}'. {(known.Length == 0 ? "This server has none (AGENT_MCP_CONFIG)." : $"Configured: {known}.")}",
                    $"{param}.server_label", "unknown_mcp_server");
            }
            if (clients.Any(c => c.Name == label))
                throw McpClientUrls.LabelTaken(label, $"{param}.server_label");
            allowed[label] = AllowedTools(tool, $"{param}.allowed_tools");
            // On a configured server the request can only add approvals: "always", or the tools of its always list.
            if (ReferenceEquals(policy, McpApprovalPolicy.AlwaysNeeded))
                approval[label] = McpApprovalPolicy.AlwaysNeeded;
            else if (policy?.Always.Count > 0)
                approval[label] = new McpApprovalPolicy(false, policy.Always, new HashSet<string>());
        }
        McpClientUrls.CheckCount(clients.Count);
        if (allowed.Count == 0 && clients.Count == 0)
            return McpRequestScope.All;
        Func<string, bool>? needsApproval = approval.Count == 0 ? null : name =>
            hub.Tools.FirstOrDefault(t => t.Definition.Name == name) is { } tool
            && approval.TryGetValue(tool.ServerLabel, out var policy) && policy.Requires(tool.ToolName);
        return new McpRequestScope(name =>
        {
            var tool = hub.Tools.FirstOrDefault(t => t.Definition.Name == name);
            if (tool is null)
                return true; // a built-in tool, or one of a client-named server: mcp entries narrow configured MCP servers only
            return allowed.TryGetValue(tool.ServerLabel, out var names) && (names is null || names.Contains(tool.ToolName));
        }, needsApproval) { Servers = allowed.Keys.ToHashSet(StringComparer.Ordinal), ClientServers = clients };
    }

    /// <summary>
    /// The request's <c>require_approval</c>, in the shape of the config's; null when absent. For a configured server it can
    /// only add approvals; for a client-named server it is the whole policy.
    /// </summary>
    private static McpApprovalPolicy? ParseApproval(JsonElement tool, string param)
    {
        if (tool.Get("require_approval") is not { } value)
            return null;
        if (value.ValueKind == JsonValueKind.String)
        {
            return value.GetString() switch
            {
                "always" => McpApprovalPolicy.AlwaysNeeded,
                "never" => McpApprovalPolicy.NeverNeeded,
                _ => throw JsonRequest.InvalidValue(param, $"'{param}' must be \"always\", \"never\" or {{\"always\": {{\"tool_names\": […]}}, \"never\": {{…}}}}."),
            };
        }
        if (value.ValueKind != JsonValueKind.Object)
            throw JsonRequest.WrongType(param, "\"always\", \"never\" or an object with 'always' and 'never' lists");
        HashSet<string> always = [];
        HashSet<string> never = [];
        foreach (var property in value.EnumerateObject())
        {
            if (property.Name is not ("always" or "never"))
                throw ApiException.BadRequest($"Unknown field '{property.Name}' in require_approval; known: always, never.", $"{param}.{property.Name}", "unknown_parameter");
            var names = AllowedTools(value, $"{param}.{property.Name}", property.Name) ?? [];
            if (property.Name == "always")
                always = names;
            else
                never = names;
        }
        // As in AGENT_MCP_CONFIG: a tool in neither list needs approval.
        return new McpApprovalPolicy(true, always, never);
    }

    private static HashSet<string>? AllowedTools(JsonElement tool, string param, string field = "allowed_tools")
    {
        if (tool.Get(field) is not { } value)
            return null;
        if (value.ValueKind == JsonValueKind.Object)
            value = value.Get("tool_names") ?? throw ApiException.BadRequest($"'{param}.tool_names' is required.", $"{param}.tool_names", "missing_required_parameter");
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
            throw JsonRequest.WrongType(param, "an array of tool names or {\"tool_names\": [...]}");
        return [.. value.EnumerateArray().Select(v => v.GetString()!)];
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, JsonElement>))]
internal sealed partial class McpRequestJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>What a request's <c>mcp</c> tools make of a turn: the server tools it may use, and the extra approvals it asks for.</summary>
public sealed record McpRequestScope(Func<string, bool>? Filter, Func<string, bool>? AlsoNeedsApproval)
{
    /// <summary>The servers the request named; null when it named none (then every configured server is in the turn).</summary>
    public IReadOnlySet<string>? Servers { get; init; }

    /// <summary>The servers the request named by <c>server_url</c> (allowed prefixes only), to connect for this turn.</summary>
    public IReadOnlyList<McpServerConfig> ClientServers { get; init; } = [];

    public static readonly McpRequestScope All = new(null, null);
}
