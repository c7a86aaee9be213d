namespace ApiServer.Agent;

/// <summary>
/// The one typed event stream an agent run produces. Every endpoint renders this stream into its own wire format.
/// A run always ends with exactly one <see cref="AgentCompleted"/> or <see cref="AgentFailed"/>, unless it is cancelled,
/// in which case enumeration throws <see cref="OperationCanceledException"/>.
/// </summary>
public abstract record AgentEvent;

public sealed record TextDelta(string Text) : AgentEvent;

public sealed record ReasoningDelta(string Text) : AgentEvent;

/// <summary>A server-executed tool is about to run.</summary>
public sealed record ToolCallStarted(string CallId, string Name, string Arguments) : AgentEvent
{
    /// <summary>The MCP server the tool belongs to (<see cref="Tools.IAgentTool.ServerLabel"/>); null for built-in tools.</summary>
    public string? ServerLabel { get; init; }

    /// <summary>The approval this call ran under, when it needed one.</summary>
    public string? ApprovalId { get; init; }
}

/// <summary>A server-executed tool finished, successfully or not.</summary>
public sealed record ToolCallCompleted(string CallId, string Name, string Result, bool IsError, TimeSpan Duration) : AgentEvent;

/// <summary>An upstream call failed in a retryable way and will be tried again after <paramref name="Delay"/>.</summary>
public sealed record Retrying(int Attempt, TimeSpan Delay, string Reason, string Model) : AgentEvent;

/// <summary>Usage of one upstream call. <see cref="AgentCompleted.Usage"/> carries the sum over the run.</summary>
public sealed record UsageReported(TokenUsage Usage) : AgentEvent;

public sealed record AgentCompleted(
    string FinalText,
    FinishReason FinishReason,
    IReadOnlyList<ChatMessage> NewMessages,
    TokenUsage Usage,
    IReadOnlyList<ToolCall> ClientToolCalls) : AgentEvent
{
    /// <summary>Reasoning text of the final model turn, if any.</summary>
    public string? Reasoning { get; init; }

    /// <summary>Calls the turn ended on because their approval was deferred; their ids in <see cref="NewMessages"/> are the approval ids.</summary>
    public IReadOnlyList<ToolApprovalRequest> PendingApprovals { get; init; } = [];
}

/// <summary>The run failed. <see cref="NewMessages"/> holds what the run appended before the failure, including any partial text.</summary>
public sealed record AgentFailed(AgentError Error, IReadOnlyList<ChatMessage> NewMessages, TokenUsage Usage) : AgentEvent;

public enum FinishReason
{
    /// <summary>The model gave its final answer.</summary>
    Stop,

    /// <summary>The upstream stopped at its token limit.</summary>
    Length,

    /// <summary>The run stopped at AGENT_MAX_ITERATIONS model calls.</summary>
    IterationLimit,

    /// <summary>The model called client-defined tools; the client must run them and continue.</summary>
    ToolCalls,

    ContentFilter,
}

/// <summary>Token counts. Reasoning tokens are part of output tokens, cached tokens part of input tokens, as in OpenAI's usage.</summary>
public readonly record struct TokenUsage(int InputTokens, int OutputTokens, int ReasoningTokens = 0, int CachedTokens = 0)
{
    public int TotalTokens => InputTokens + OutputTokens;

    public static TokenUsage operator +(TokenUsage a, TokenUsage b) => new(
        a.InputTokens + b.InputTokens,
        a.OutputTokens + b.OutputTokens,
        a.ReasoningTokens + b.ReasoningTokens,
        a.CachedTokens + b.CachedTokens);
}
