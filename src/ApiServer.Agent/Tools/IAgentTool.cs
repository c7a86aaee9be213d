using System.Text.Json;

namespace ApiServer.Agent.Tools;

/// <summary>
/// A server-executed tool. Register implementations in DI as IAgentTool (or through an <see cref="IAgentToolSource"/>)
/// and the loop offers them to the model; no loop code changes. Names starting with '_' are internal:
/// they run like any tool but are never surfaced to clients as tool events.
/// </summary>
public interface IAgentTool
{
    ToolDefinition Definition { get; }

    /// <summary>
    /// Runs the tool. <paramref name="arguments"/> has already been checked against <see cref="ToolDefinition.Parameters"/>.
    /// Throwing is fine: the exception message becomes an error result the model sees.
    /// </summary>
    Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken);

    /// <summary>The tool's own time limit; null uses AGENT_TOOL_TIMEOUT (the registry's default).</summary>
    TimeSpan? Timeout => null;

    /// <summary>The MCP server that provides the tool, shown to clients (Responses <c>server_label</c>); null for built-in tools.</summary>
    string? ServerLabel => null;

    /// <summary>The operator wants a person to approve each call (an MCP server's <c>require_approval</c>); see <see cref="IToolApprovalGate"/>.</summary>
    bool RequiresApproval => false;
}

/// <summary>Supplies tools decided at runtime, e.g. the workspace tools that exist only when AGENT_WORKSPACE is set.</summary>
public interface IAgentToolSource
{
    IEnumerable<IAgentTool> GetTools();
}

/// <summary>
/// Supplies tools that come and go while the server runs (MCP servers connecting, dropping, changing their lists).
/// The registry asks on every turn; built-in tools keep their names when one of these would clash.
/// </summary>
public interface IDynamicAgentToolSource
{
    IReadOnlyList<IAgentTool> CurrentTools { get; }
}

/// <summary>What a tool call produced. Error results are still shown to the model, marked as errors.</summary>
public readonly record struct ToolResult(string Content, bool IsError = false)
{
    public static ToolResult Ok(string content) => new(content);

    public static ToolResult Error(string message) => new(message, IsError: true);
}
