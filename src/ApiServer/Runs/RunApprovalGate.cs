using ApiServer.Agent;
using ApiServer.Approvals;
using ApiServer.Http;

namespace ApiServer.Runs;

/// <summary>
/// The approval gate of one run: each call that needs approval publishes <c>approval.request</c> and waits (the run's status
/// is <c>waiting_for_approval</c> while any does) until <c>POST /v1/runs/{id}/approval</c> answers it, the timeout denies it,
/// or the run is stopped. Publishing here, after the wait is registered, means an answer can never arrive before its request.
/// </summary>
public sealed class RunApprovalGate(Run run, ToolApprovalMemory memory, TimeSpan timeout, TimeProvider time) : IToolApprovalGate
{
    public static readonly IReadOnlyList<string> Choices = ["once", "session", "always", "deny"];

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (ToolApprovalRequest Request, TaskCompletionSource<ApprovalDecision> Answer)> _pending = new(StringComparer.Ordinal);
    private readonly HashSet<string> _answered = new(StringComparer.Ordinal);

    public string NewApprovalId() => "apr_" + Guid.NewGuid().ToString("N");

    public async ValueTask<bool> IsPreapprovedAsync(ToolApprovalRequest request, CancellationToken cancellationToken) =>
        memory.IsApprovedForSession(run.Spec.Owner, run.SessionId, request.Name)
        || await memory.IsApprovedAlwaysAsync(run.Spec.Owner, request.Name, cancellationToken);

    public async Task<ApprovalDecision> DecideAsync(ToolApprovalRequest request, CancellationToken cancellationToken)
    {
        var answer = new TaskCompletionSource<ApprovalDecision>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
            _pending[request.ApprovalId] = (request, answer);
        run.EnterWaiting();
        run.Publish("approval.request", w =>
        {
            w.WriteString("approval_id", request.ApprovalId);
            w.WriteString("tool", request.Name);
            RunEventFrames.WriteStringOrNull(w, "server", request.ServerLabel);
            w.WriteString("arguments", request.Arguments);
            w.WriteStartArray("choices");
            foreach (var choice in Choices)
                w.WriteStringValue(choice);
            w.WriteEndArray();
            w.WriteNumber("timeout_seconds", timeout.TotalSeconds);
        });
        try
        {
            var timedOut = Task.Delay(timeout, time, cancellationToken);
            var first = await Task.WhenAny(answer.Task, timedOut);
            cancellationToken.ThrowIfCancellationRequested();
            var decision = first == answer.Task ? await answer.Task : new ApprovalDecision(ApprovalOutcome.Denied, "timed out", "timeout");
            lock (_lock)
            {
                _pending.Remove(request.ApprovalId);
                _answered.Add(request.ApprovalId);
            }
            Publish(request, decision);
            return decision;
        }
        finally
        {
            lock (_lock)
                _pending.Remove(request.ApprovalId);
            run.LeaveWaiting();
        }
    }

    /// <summary>Answers a waiting approval; throws the API error a client should get when it can't be answered.</summary>
    public async Task AnswerAsync(string approvalId, string choice, string? reason, CancellationToken cancellationToken)
    {
        if (!Choices.Contains(choice))
            throw ApiException.BadRequest($"'choice' must be one of {string.Join(", ", Choices)}; got '{choice}'.", "choice", "invalid_value");
        ToolApprovalRequest request;
        TaskCompletionSource<ApprovalDecision> answer;
        lock (_lock)
        {
            if (!_pending.Remove(approvalId, out var pending))
            {
                if (_answered.Contains(approvalId))
                    throw new ApiException(StatusCodes.Status409Conflict, $"Approval '{approvalId}' has already been answered (or timed out).",
                        param: "approval_id", code: "approval_already_answered");
                throw ApiException.NotFound($"Run '{run.Id}' has no approval '{approvalId}' waiting for an answer.", "approval_not_found", "approval_id");
            }
            _answered.Add(approvalId);
            (request, answer) = pending;
        }
        if (choice == "session" && run.SessionId is { } session)
            memory.ApproveForSession(run.Spec.Owner, session, request.Name);
        if (choice == "always")
            await memory.ApproveAlwaysAsync(run.Spec.Owner, request.Name, time.GetUtcNow(), cancellationToken);
        answer.TrySetResult(new ApprovalDecision(choice == "deny" ? ApprovalOutcome.Denied : ApprovalOutcome.Approved, reason, choice));
    }

    private void Publish(ToolApprovalRequest request, ApprovalDecision decision) => run.Publish("approval.responded", w =>
    {
        w.WriteString("approval_id", request.ApprovalId);
        w.WriteString("tool", request.Name);
        w.WriteString("choice", decision.Choice ?? "deny");
        w.WriteBoolean("approved", decision.Outcome == ApprovalOutcome.Approved);
        w.WriteBoolean("timed_out", decision.Choice == "timeout");
        RunEventFrames.WriteStringOrNull(w, "reason", decision.Reason);
    });
}
