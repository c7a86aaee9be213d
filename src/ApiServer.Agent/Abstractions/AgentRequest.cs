using System.Text.Json;

namespace ApiServer.Agent;

/// <summary>Sampling settings passed to the upstream where it understands them.</summary>
public sealed record GenerationSettings
{
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public int? MaxTokens { get; init; }

    /// <summary>
    /// The client named the limit <c>max_completion_tokens</c>, so it is sent under that name (as it is with a reasoning effort;
    /// see ChatRequestWriter). OpenAI's reasoning models accept only that name; some local servers know only <c>max_tokens</c>.
    /// </summary>
    public bool MaxTokensAsCompletionTokens { get; init; }
    public IReadOnlyList<string>? Stop { get; init; }
    public string? User { get; init; }
    public bool? ParallelToolCalls { get; init; }

    /// <summary>
    /// Further chat-completions parameters sent to the upstream as given (response_format, seed, reasoning_effort…). The caller
    /// has checked them; the upstream decides what it supports.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, JsonElement>> Upstream { get; init; } = [];
}

/// <summary>How the model may use tools: none, auto, required, or one named function.</summary>
public sealed record ToolChoice(ToolChoiceMode Mode, string? FunctionName = null)
{
    public static readonly ToolChoice Auto = new(ToolChoiceMode.Auto);
    public static readonly ToolChoice None = new(ToolChoiceMode.None);
    public static readonly ToolChoice Required = new(ToolChoiceMode.Required);
}

public enum ToolChoiceMode
{
    Auto,
    None,
    Required,
    Function,
}

/// <summary>
/// One agent turn. <see cref="Messages"/> is the whole conversation the model should see (history then the new input,
/// which is usually a user message, or tool results when a client continues after its own tool calls).
/// System messages are not part of it: <see cref="Instructions"/> is layered on top of the configured base prompt.
/// </summary>
public sealed record AgentRequest
{
    public string? Instructions { get; init; }

    public required IReadOnlyList<ChatMessage> Messages { get; init; }

    public GenerationSettings Settings { get; init; } = new();

    /// <summary>Function tools defined by the client. The agent never executes them; a call ends the run with <see cref="FinishReason.ToolCalls"/>.</summary>
    public IReadOnlyList<ToolDefinition> ClientTools { get; init; } = [];

    public ToolChoice ToolChoice { get; init; } = ToolChoice.Auto;

    /// <summary>
    /// Most tool calls (server and client, internal ones aside) this run makes; null is no cap. As in OpenAI, calls past it are
    /// ignored: left out of the turn, never run or returned, and once it is reached the model is offered no more tools.
    /// </summary>
    public int? MaxToolCalls { get; init; }

    /// <summary>
    /// Narrows the server tools this run may offer and run (a Responses <c>mcp</c> tool naming some servers); null offers all.
    /// A call to a tool it leaves out is answered as an unknown tool.
    /// </summary>
    public Func<string, bool>? ServerToolFilter { get; init; }

    /// <summary>
    /// The server tools this turn may offer and run (an API key's tool policy); null means all. A tool left out is not shown to
    /// the model, and a call to it anyway gets an error result instead of running.
    /// </summary>
    public IReadOnlySet<string>? AllowedServerTools { get; init; }

    /// <summary>
    /// Server tools only this turn has (the tools of an MCP server a Responses request named by <c>server_url</c>), offered and
    /// run like the registry's; the caller owns them and ends them when the run is over.
    /// </summary>
    public IReadOnlyList<Tools.IAgentTool> TurnTools { get; init; } = [];

    /// <summary>Asks a person about calls that need approval; null: such calls are not run (the model is told why).</summary>
    public IToolApprovalGate? ApprovalGate { get; init; }

    /// <summary>Tools this request wants approved on top of the operator's (a Responses <c>mcp</c> tool's <c>require_approval</c>); never fewer.</summary>
    public Func<string, bool>? AlsoNeedsApproval { get; init; }

    /// <summary>Answers to approval requests a previous turn ended with; the calls run (or are refused) before the model is called.</summary>
    public IReadOnlyList<ApprovalAnswer> ApprovalAnswers { get; init; } = [];

    /// <summary>Whether a call to <paramref name="tool"/> must wait for a person.</summary>
    public bool NeedsApproval(Tools.IAgentTool tool) => tool.RequiresApproval || (AlsoNeedsApproval?.Invoke(tool.Definition.Name) ?? false);

    /// <summary>Whether both the key's policy and the request's narrowing let this turn offer and run the tool.</summary>
    public bool AllowsServerTool(string name) => Tools.ToolRegistry.IsInternal(name)
        || (AllowedServerTools is null || AllowedServerTools.Contains(name)) && (ServerToolFilter is null || ServerToolFilter(name));
}
