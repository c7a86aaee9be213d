using System.Threading.Channels;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Loop;

/// <summary>
/// Runs the server tool calls of one model turn in parallel and reports them (internal '_' tools silently). This is the
/// approval point: a call to a tool that needs approval waits for the request's <see cref="IToolApprovalGate"/>, each on its
/// own, so several can be pending at once while the others run.
/// </summary>
internal static class ToolExecution
{
    /// <summary>One call's outcome: its result, or (deferred) the approval request the turn ends on.</summary>
    public readonly record struct Outcome(ToolResult Result, ToolApprovalRequest? Deferred = null);

    public static async Task<Outcome[]> RunAsync(
        IReadOnlyList<ToolCall> calls,
        ToolRegistry tools,
        AgentRequest request,
        ChannelWriter<AgentEvent> events,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (calls.Count == 0)
            return [];

        // All "started" (or "approval requested") events first, in the model's order, so clients see the whole batch
        // before results trickle in.
        var approvals = new ToolApprovalRequest?[calls.Count];
        for (var i = 0; i < calls.Count; i++)
        {
            var call = calls[i];
            if (ToolRegistry.IsInternal(call.Name))
                continue;
            var known = tools.TryGet(call.Name, out var tool);
            if (known && request.AllowsServerTool(call.Name) && request.NeedsApproval(tool!) && request.ApprovalGate is { } gate)
            {
                var asking = new ToolApprovalRequest(gate.NewApprovalId(), call.Id, call.Name, tool!.ServerLabel, call.Arguments);
                if (!await gate.IsPreapprovedAsync(asking, cancellationToken))
                {
                    approvals[i] = asking;
                    await events.WriteAsync(new ToolApprovalRequested(asking), cancellationToken);
                    continue;
                }
            }
            await events.WriteAsync(new ToolCallStarted(call.Id, call.Name, call.Arguments) { ServerLabel = known ? tool!.ServerLabel : null }, cancellationToken);
        }

        var running = new Task<Outcome>[calls.Count];
        for (var i = 0; i < calls.Count; i++)
            running[i] = approvals[i] is { } asking
                ? AfterApprovalAsync(calls[i], asking, tools, request, events, time, cancellationToken)
                : RunOneAsync(calls[i], tools, request, events, time, cancellationToken);
        return await Task.WhenAll(running);
    }

    /// <summary>Calls a previous turn deferred, now answered: approved ones run, denied ones get the denial as their result.</summary>
    public static async Task<Outcome[]> ResumeAsync(
        IReadOnlyList<(ToolCall Call, ApprovalAnswer Answer)> answered,
        ToolRegistry tools,
        AgentRequest request,
        ChannelWriter<AgentEvent> events,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        var running = new Task<Outcome>[answered.Count];
        for (var i = 0; i < answered.Count; i++)
        {
            var (call, answer) = answered[i];
            var label = tools.TryGet(call.Name, out var tool) ? tool.ServerLabel : null;
            var asked = new ToolApprovalRequest(answer.ApprovalId, call.Id, call.Name, label, call.Arguments);
            var decision = new ApprovalDecision(answer.Approve ? ApprovalOutcome.Approved : ApprovalOutcome.Denied, answer.Reason, answer.Approve ? "once" : "deny");
            running[i] = ApplyAsync(call, asked, decision, tools, request, events, time, cancellationToken);
        }
        return await Task.WhenAll(running);
    }

    private static async Task<Outcome> AfterApprovalAsync(
        ToolCall call, ToolApprovalRequest asking, ToolRegistry tools, AgentRequest request, ChannelWriter<AgentEvent> events, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var decision = await request.ApprovalGate!.DecideAsync(asking, cancellationToken);
        if (decision.Outcome == ApprovalOutcome.Deferred)
            return new Outcome(default, asking);
        return await ApplyAsync(call, asking, decision, tools, request, events, time, cancellationToken);
    }

    private static async Task<Outcome> ApplyAsync(
        ToolCall call, ToolApprovalRequest asked, ApprovalDecision decision, ToolRegistry tools, AgentRequest request, ChannelWriter<AgentEvent> events,
        TimeProvider time, CancellationToken cancellationToken)
    {
        await events.WriteAsync(new ToolApprovalResolved(asked, decision), cancellationToken);
        if (decision.Outcome != ApprovalOutcome.Approved)
        {
            return new Outcome(ToolResult.Error(decision.Choice == "timeout"
                ? ApprovalMessages.TimedOut(call.Name)
                : ApprovalMessages.Denied(call.Name, decision.Reason)));
        }
        await events.WriteAsync(new ToolCallStarted(call.Id, call.Name, call.Arguments) { ServerLabel = asked.ServerLabel, ApprovalId = asked.ApprovalId }, cancellationToken);
        return await RunOneAsync(call, tools, request, events, time, cancellationToken, approved: true);
    }

    private static async Task<Outcome> RunOneAsync(
        ToolCall call, ToolRegistry tools, AgentRequest request, ChannelWriter<AgentEvent> events, TimeProvider time, CancellationToken cancellationToken,
        bool approved = false)
    {
        // Tools may do synchronous file I/O before their first await; keep that off the loop's thread.
        await Task.Yield();
        var started = time.GetTimestamp();
        ToolResult result;
        if (!request.AllowsServerTool(call.Name))
            result = ToolResult.Error(request.AllowedServerTools is { } allowed && !allowed.Contains(call.Name)
                ? $"Tool '{call.Name}' is not available to this API key."
                : $"Tool '{call.Name}' is not available in this request.");
        else if (!approved && tools.TryGet(call.Name, out var tool) && request.NeedsApproval(tool) && request.ApprovalGate is null)
            result = ToolResult.Error(ApprovalMessages.NoWayToAsk(call.Name));
        else
            result = await tools.InvokeAsync(call, cancellationToken);
        if (!ToolRegistry.IsInternal(call.Name))
            await events.WriteAsync(new ToolCallCompleted(call.Id, call.Name, result.Content, result.IsError, time.GetElapsedTime(started)), cancellationToken);
        return new Outcome(result);
    }
}
