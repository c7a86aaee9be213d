using ApiServer.Agent;

namespace ApiServer.Responses;

/// <summary>
/// The approval gate of /v1/responses: nobody can answer while a Response is being made, so every request ends the turn with an
/// <c>mcp_approval_request</c> item, and the client's <c>mcp_approval_response</c> in the next turn answers it.
/// </summary>
public sealed class DeferringApprovalGate : IToolApprovalGate
{
    public static readonly DeferringApprovalGate Instance = new();

    public string NewApprovalId() => ResponseRenderer.NewId(PendingApprovals.IdPrefix.TrimEnd('_'));

    public ValueTask<bool> IsPreapprovedAsync(ToolApprovalRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(false);

    public Task<ApprovalDecision> DecideAsync(ToolApprovalRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(ApprovalDecision.Deferred);
}
