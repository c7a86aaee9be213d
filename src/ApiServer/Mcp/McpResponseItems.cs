using System.Text.Json;
using ApiServer.Responses;

namespace ApiServer.Mcp;

/// <summary>What a Responses turn shows of the MCP servers it may use.</summary>
public static class McpResponseItems
{
    /// <summary>
    /// One <c>mcp_list_tools</c> item per ready server whose tools the turn may use, on the first turn of a chain (as OpenAI
    /// does); later turns build on the listing already in the chain. Servers that are down are listed with their error.
    /// </summary>
    /// <param name="serverVisible">Whether the calling key may use a server; the others are not listed at all.</param>
    /// <param name="toolVisible">Whether the calling key may use a tool (its tool policy); null when it may use all.</param>
    public static IReadOnlyList<McpListToolsItem> ListTools(McpHub hub, McpRequestScope scope, bool firstInChain, Func<string, bool> serverVisible,
        Func<string, bool>? toolVisible = null)
    {
        bool filter(string name) => (scope.Filter?.Invoke(name) ?? true) && (toolVisible?.Invoke(name) ?? true);
        if (!firstInChain)
            return [];
        var items = new List<McpListToolsItem>();
        // A server the request's mcp tools did not name is not in the turn, ready or not.
        foreach (var server in hub.Servers.Where(s => s.Config.Enabled && serverVisible(s.Config.Name) && (scope.Servers?.Contains(s.Config.Name) ?? true)))
        {
            var tools = hub.Tools.Where(t => t.ServerLabel == server.Config.Name && filter(t.Definition.Name)).ToList();
            var offered = server.State == McpServerState.Ready;
            if (offered && tools.Count == 0 && (scope.Filter is not null || toolVisible is not null))
                continue; // narrowed away by the request's mcp tools or the key's tool policy
            items.Add(new McpListToolsItem
            {
                Id = ResponseRenderer.NewId("mcpl"),
                ServerLabel = server.Config.Name,
                Tools = [.. tools.Select(t => new McpListedTool(t.Definition.Name, t.Definition.Description, t.Definition.Parameters, t.Annotations))],
                Error = offered ? null : server.UnavailableReason,
            });
        }
        return items;
    }
}
