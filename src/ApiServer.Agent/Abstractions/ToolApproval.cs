namespace ApiServer.Agent;

/// <summary>
/// Where a person approves tool calls. The agent asks only for calls to tools that need approval (the tool says so, or the
/// request's <see cref="AgentRequest.AlsoNeedsApproval"/> does); the host decides how to ask: a Responses turn ends with the
/// request (<see cref="ApprovalOutcome.Deferred"/>), a run waits for an answer. No gate: such a tool is not run at all.
/// </summary>
public interface IToolApprovalGate
{
    /// <summary>A new approval id (created once; a deferred call keeps it as its call id in the history).</summary>
    string NewApprovalId();

    /// <summary>Approved earlier for longer than one call (a session, or always): runs without asking.</summary>
    ValueTask<bool> IsPreapprovedAsync(ToolApprovalRequest request, CancellationToken cancellationToken);

    /// <summary>Called after <see cref="ToolApprovalRequested"/> was written; completes with the person's answer.</summary>
    Task<ApprovalDecision> DecideAsync(ToolApprovalRequest request, CancellationToken cancellationToken);
}

/// <summary>One call waiting for a person: <paramref name="Name"/> is the tool's name as the model sees it.</summary>
public sealed record ToolApprovalRequest(string ApprovalId, string CallId, string Name, string? ServerLabel, string Arguments);

public enum ApprovalOutcome
{
    Approved,
    Denied,

    /// <summary>Nobody can answer during this turn: the turn ends with the request, and a later turn carries the answer.</summary>
    Deferred,
}

/// <param name="Choice">How it was answered, for the host's events (once, session, always, deny, timeout).</param>
public sealed record ApprovalDecision(ApprovalOutcome Outcome, string? Reason = null, string? Choice = null)
{
    public static readonly ApprovalDecision Deferred = new(ApprovalOutcome.Deferred);
}

/// <summary>The answer to an approval request of an earlier turn, carried by the turn that continues it.</summary>
public sealed record ApprovalAnswer(string ApprovalId, bool Approve, string? Reason = null);

/// <summary>A call needs a person's approval; the host asks (<see cref="IToolApprovalGate"/>).</summary>
public sealed record ToolApprovalRequested(ToolApprovalRequest Request) : AgentEvent;

/// <summary>The approval request was answered (or timed out) and the call runs or not accordingly.</summary>
public sealed record ToolApprovalResolved(ToolApprovalRequest Request, ApprovalDecision Decision) : AgentEvent;

/// <summary>What the model is told about a call that did not run for want of approval.</summary>
public static class ApprovalMessages
{
    public static string Denied(string name, string? reason) =>
        $"The user denied the call to '{name}'; it was not run.{(string.IsNullOrWhiteSpace(reason) ? "" : $" Reason: {reason}")}";

    public static string TimedOut(string name) =>
        $"Nobody approved the call to '{name}' in time; it was not run.";

    public static string NotAnswered(string name) =>
        $"The call to '{name}' waited for the user's approval, and the user went on without answering; it was not run.";

    public static string NoWayToAsk(string name) =>
        $"Tool '{name}' needs a person's approval before it runs, and this API has no way to ask for it, so it was not run. " +
        "It can be used through /v1/responses (mcp_approval_request) or /v1/runs (approval.request).";
}
