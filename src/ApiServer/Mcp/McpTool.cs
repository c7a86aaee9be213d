using System.Text;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Agent.Tools;
using ModelContextProtocol.Protocol;

namespace ApiServer.Mcp;

/// <summary>
/// One tool of an MCP server as the agent sees it, under a name unique across the server (<see cref="McpHub"/> picks it).
/// The registry has already checked the arguments against the server's input schema and applies <see cref="Timeout"/>;
/// cancelling the token makes the SDK send <c>notifications/cancelled</c> to the server.
/// </summary>
public sealed class McpTool(McpServerConnection server, Tool tool, string name) : IAgentTool
{
    /// <summary>Most characters of a result the model gets; MCP servers can return whole files.</summary>
    public const int MaxResultChars = 100_000;

    private static readonly JsonElement EmptySchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();

    public ToolDefinition Definition { get; } = new(name, tool.Description ?? tool.Title ?? tool.Name,
        tool.InputSchema.ValueKind == JsonValueKind.Object ? tool.InputSchema.Clone() : EmptySchema);

    public TimeSpan? Timeout => server.Config.Timeout;

    public string ServerLabel => server.Config.Name;

    public McpServerConfig ServerConfig => server.Config;

    /// <summary>The tool's own name on its server.</summary>
    public string ToolName => tool.Name;

    public bool RequiresApproval => server.Config.Approval.Requires(tool.Name);

    /// <summary>The server's hints (read-only, destructive…), as JSON, for listings.</summary>
    public JsonElement? Annotations => tool.Annotations is { } annotations
        ? JsonSerializer.SerializeToElement(annotations, ModelContextProtocol.McpJsonUtilities.DefaultOptions)
        : null;

    public async Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (server.Client is not { } client)
            return ToolResult.Error(server.UnavailableReason);
        var values = arguments.ValueKind == JsonValueKind.Object
            ? arguments.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
            : [];
        CallToolResult result;
        try
        {
            result = await client.CallToolAsync(tool.Name, values, cancellationToken: cancellationToken);
        }
        catch (ModelContextProtocol.McpException ex)
        {
            return ToolResult.Error($"MCP server '{ServerLabel}' refused '{tool.Name}': {ex.Message}");
        }
        return new ToolResult(Describe(result), result.IsError == true);
    }

    /// <summary>Text as it is, structured content as JSON, anything else described so the model knows it was there.</summary>
    public static string Describe(CallToolResult result)
    {
        var text = new StringBuilder();
        foreach (var block in result.Content)
        {
            if (text.Length > 0)
                text.Append('\n');
            text.Append(block switch
            {
                TextContentBlock t => t.Text,
                ImageContentBlock i => $"[image, {i.MimeType}, {i.Data.Length * 3 / 4} bytes: not shown]",
                AudioContentBlock a => $"[audio, {a.MimeType}, {a.Data.Length * 3 / 4} bytes: not shown]",
                EmbeddedResourceBlock { Resource: TextResourceContents r } => $"[resource {r.Uri}]\n{r.Text}",
                EmbeddedResourceBlock { Resource: var r } => $"[resource {r.Uri}, {r.MimeType ?? "binary"}: not shown]",
                ResourceLinkBlock l => $"[resource link {l.Uri}{(l.Name is { Length: > 0 } n ? $" ({n})" : "")}]",
                _ => $"[{block.Type} content: not shown]",
            });
        }
        // Servers that return structured content usually repeat it as text; send it only when there is nothing else.
        if (text.Length == 0 && result.StructuredContent is { } structured)
            text.Append(structured.GetRawText());
        if (text.Length > MaxResultChars)
        {
            var total = text.Length;
            text.Length = MaxResultChars;
            text.Append($"\n[result cut: {total} characters, the first {MaxResultChars} shown]");
        }
        return text.ToString();
    }
}
