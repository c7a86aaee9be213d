using System.Threading.Channels;
using ApiServer.Agent.Configuration;
using ApiServer.Agent.Model;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Loop;

/// <summary>The state of one run: the conversation so far, what it appended, usage. Writes exactly one terminal event.</summary>
internal sealed class AgentRun(
    AgentRequest request,
    AgentOptions options,
    IChatModel model,
    ToolRegistry tools,
    ChannelWriter<AgentEvent> events,
    TimeProvider time)
{
    private readonly List<ChatMessage> _conversation = [];
    private readonly List<ChatMessage> _newMessages = [];
    private TokenUsage _usage;
    private int _toolCalls;

    public async Task ExecuteAsync(CancellationToken cancellationToken)
    {
        if (SystemPrompt() is { } system)
            _conversation.Add(system);
        _conversation.AddRange(request.Messages);

        var clientTools = request.ClientTools.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        IReadOnlyList<ToolDefinition> offered = [.. tools.Definitions.Where(d => request.AllowsServerTool(d.Name)), .. request.ClientTools];
        var toolChoice = request.ToolChoice;
        await ResumeApprovedAsync(cancellationToken);

        for (var iteration = 0; iteration < options.MaxIterations; iteration++)
        {
            if (_toolCalls >= request.MaxToolCalls)
                toolChoice = ToolChoice.None;
            ModelTurn turn;
            try
            {
                turn = await model.CompleteAsync(new ModelRequest(_conversation, offered, toolChoice, request.Settings), events, cancellationToken);
            }
            catch (ModelCallException ex)
            {
                if (ex.PartialText.Length > 0 || ex.PartialReasoning is not null)
                    _newMessages.Add(ChatMessage.Assistant(ex.PartialText, reasoning: ex.PartialReasoning));
                await events.WriteAsync(new AgentFailed(ex.Error, _newMessages, _usage), cancellationToken);
                return;
            }

            if (turn.Usage is { } usage)
            {
                _usage += usage;
                await events.WriteAsync(new UsageReported(usage), cancellationToken);
            }

            var asked = turn.ToolCalls.Count;
            turn = WithinToolBudget(turn);
            // Every call was past the cap and there is nothing else to say: ask again, now without tools, for the answer.
            if (asked > 0 && turn.ToolCalls.Count == 0 && turn.Text.Length == 0)
                continue;

            // A turn cut at the token limit may hold half-written tool arguments: stop rather than run them.
            if (turn.ToolCalls.Count == 0 || turn.FinishReason == "length")
            {
                Append(ChatMessage.Assistant(turn.Text, reasoning: turn.Reasoning));
                await CompleteAsync(turn.Text, MapFinish(turn.FinishReason), [], turn.Reasoning, cancellationToken);
                return;
            }

            var serverCalls = turn.ToolCalls.Where(c => !clientTools.Contains(c.Name)).ToList();
            var clientCalls = turn.ToolCalls.Where(c => clientTools.Contains(c.Name)).ToList();
            AppendAssistantTurn(turn, clientTools);

            var results = await ToolExecution.RunAsync(serverCalls, tools, request, events, time, cancellationToken);
            var deferred = new List<ToolApprovalRequest>();
            for (var i = 0; i < serverCalls.Count; i++)
            {
                if (results[i].Deferred is { } pending)
                {
                    deferred.Add(pending);
                    continue;
                }
                var result = ChatMessage.ToolResult(serverCalls[i].Id, serverCalls[i].Name, results[i].Result.Content);
                if (ToolRegistry.IsInternal(serverCalls[i].Name))
                    _conversation.Add(result);
                else
                    Append(result);
            }

            if (deferred.Count > 0)
            {
                // The turn ends on the requests; each waiting call keeps its approval id as its call id, so the answer
                // (mcp_approval_response) names the call directly and the history stays one consistent conversation.
                RenameDeferredCalls(deferred);
                await events.WriteAsync(new AgentCompleted(turn.Text, FinishReason.ToolCalls, _newMessages, _usage, clientCalls)
                {
                    Reasoning = turn.Reasoning,
                    PendingApprovals = deferred,
                }, cancellationToken);
                return;
            }

            if (clientCalls.Count > 0)
            {
                await CompleteAsync(turn.Text, FinishReason.ToolCalls, clientCalls, turn.Reasoning, cancellationToken);
                return;
            }

            // "required" or a named function applies to the first call only; keeping it would force a tool call
            // on every turn and the run could never give its answer.
            if (toolChoice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function)
                toolChoice = ToolChoice.Auto;
        }

        var limit = $"I stopped after {options.MaxIterations} model calls, the limit for one run (AGENT_MAX_ITERATIONS), " +
                    "before reaching a final answer. Ask me to continue to pick up where I left off.";
        await events.WriteAsync(new TextDelta(limit), cancellationToken);
        Append(ChatMessage.Assistant(limit));
        await CompleteAsync(limit, FinishReason.IterationLimit, [], null, cancellationToken);
    }

    /// <summary>The turn without the calls past <see cref="AgentRequest.MaxToolCalls"/>, which are never run nor shown.</summary>
    private ModelTurn WithinToolBudget(ModelTurn turn)
    {
        if (request.MaxToolCalls is not { } max || turn.ToolCalls.Count == 0)
            return turn;
        var kept = new List<ToolCall>(turn.ToolCalls.Count);
        foreach (var call in turn.ToolCalls)
        {
            if (ToolRegistry.IsInternal(call.Name))
                kept.Add(call);
            else if (_toolCalls < max)
            {
                _toolCalls++;
                kept.Add(call);
            }
        }
        return kept.Count == turn.ToolCalls.Count ? turn : turn with { ToolCalls = kept };
    }

    /// <summary>
    /// Runs (or refuses) the calls an earlier turn deferred for approval, answered by this request. Their results follow the
    /// history's last tool results; the caller has checked that nothing else follows that turn.
    /// </summary>
    private async Task ResumeApprovedAsync(CancellationToken cancellationToken)
    {
        if (request.ApprovalAnswers.Count == 0)
            return;
        var calls = _conversation.Where(m => m.ToolCalls is not null).SelectMany(m => m.ToolCalls!).ToDictionary(c => c.Id, StringComparer.Ordinal);
        var answered = request.ApprovalAnswers.Where(a => calls.ContainsKey(a.ApprovalId)).Select(a => (calls[a.ApprovalId], a)).ToList();
        var results = await ToolExecution.ResumeAsync(answered, tools, request, events, time, cancellationToken);
        for (var i = 0; i < answered.Count; i++)
            Append(ChatMessage.ToolResult(answered[i].Item1.Id, answered[i].Item1.Name, results[i].Result.Content));
    }

    private void RenameDeferredCalls(List<ToolApprovalRequest> deferred)
    {
        var ids = deferred.ToDictionary(d => d.CallId, d => d.ApprovalId, StringComparer.Ordinal);
        ChatMessage Rename(ChatMessage m) => m with { ToolCalls = [.. m.ToolCalls!.Select(c => ids.TryGetValue(c.Id, out var id) ? c with { Id = id } : c)] };
        var at = _conversation.FindLastIndex(m => m.ToolCalls is not null);
        _conversation[at] = Rename(_conversation[at]);
        var visibleAt = _newMessages.FindLastIndex(m => m.ToolCalls is not null);
        if (visibleAt >= 0)
            _newMessages[visibleAt] = Rename(_newMessages[visibleAt]);
    }

    private void Append(ChatMessage message)
    {
        _conversation.Add(message);
        _newMessages.Add(message);
    }

    /// <summary>
    /// The model sees the whole turn within the run; NewMessages (stored and rendered to clients) leaves out
    /// internal calls, and the whole message when nothing else is left in it.
    /// </summary>
    private void AppendAssistantTurn(ModelTurn turn, HashSet<string> clientTools)
    {
        var message = ChatMessage.Assistant(turn.Text, turn.ToolCalls, turn.Reasoning);
        _conversation.Add(message);
        var visible = turn.ToolCalls.Where(c => clientTools.Contains(c.Name) || !ToolRegistry.IsInternal(c.Name)).ToList();
        if (visible.Count == turn.ToolCalls.Count)
            _newMessages.Add(message);
        else if (visible.Count > 0 || turn.Text.Length > 0 || turn.Reasoning is not null)
            _newMessages.Add(ChatMessage.Assistant(turn.Text, visible, turn.Reasoning));
    }

    private ValueTask CompleteAsync(string text, FinishReason reason, IReadOnlyList<ToolCall> clientCalls, string? reasoning, CancellationToken cancellationToken) =>
        events.WriteAsync(new AgentCompleted(text, reason, _newMessages, _usage, clientCalls) { Reasoning = reasoning }, cancellationToken);

    /// <summary>One system message (base prompt, then the request's instructions): some local chat templates reject two.</summary>
    private ChatMessage? SystemPrompt()
    {
        var basePrompt = options.SystemPrompt?.Trim() ?? "";
        var instructions = request.Instructions?.Trim() ?? "";
        return (basePrompt.Length, instructions.Length) switch
        {
            (0, 0) => null,
            (_, 0) => ChatMessage.System(basePrompt),
            (0, _) => ChatMessage.System(instructions),
            _ => ChatMessage.System(basePrompt + "\n\n" + instructions),
        };
    }

    private static FinishReason MapFinish(string? reason) => reason switch
    {
        "length" => FinishReason.Length,
        "content_filter" => FinishReason.ContentFilter,
        _ => FinishReason.Stop,
    };
}
