using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Http;
using ApiServer.RequestParsing;
using ApiServer.Responses.Store;

namespace ApiServer.Responses;

/// <summary>
/// What a new response builds on: the history the model sees, inherited instructions and session. When an explicit history
/// replaces the stored one, the new response is stored without a parent and with that history as part of its input, so a later
/// chain reproduces exactly what the model saw.
/// </summary>
public sealed record ResolvedConversation(
    string? PreviousResponseId,
    IReadOnlyList<ChatMessage> Messages,
    string? Instructions,
    string? SessionId)
{
    public string? ChainParentId { get; init; }

    /// <summary>What the stored response records as its input: an explicit history, then this turn's input.</summary>
    public StoredTurnInput StoredInput { get; init; } = new([], []);

    /// <summary>Answers to the approval requests the conversation ended on (checked: each names a waiting call).</summary>
    public IReadOnlyList<ApprovalAnswer> ApprovalAnswers { get; init; } = [];
}

/// <summary>
/// Resolves chaining (previous_response_id, conversation, conversation_history) into the messages and instructions of one
/// turn, for /v1/responses and /v1/runs alike.
/// </summary>
public static class ChainResolver
{
    /// <param name="instructions">The request's own instructions; without them the previous response's are inherited.
    /// System messages of the input are layered after them.</param>
    /// <param name="owner">Who asks: a chain, conversation or item (item_reference) of another owner is answered as unknown.</param>
    /// <param name="storedHistory">A stored conversation's history (Conversations API), used like a chain's.</param>
    public static async Task<ResolvedConversation> ResolveAsync(IResponseStore store, Owner owner, string? previousResponseId, string? conversationId,
        ResponsesInput input, string? instructions, CancellationToken cancellationToken, IReadOnlyList<ChatMessage>? storedHistory = null)
    {
        if (conversationId is not null)
            previousResponseId = await store.GetConversationHeadAsync(conversationId, owner, cancellationToken);

        var explicitHistory = input.ConversationHistory;
        IReadOnlyList<ChatMessage> history = storedHistory ?? [];
        string? sessionId = null;
        if (previousResponseId is not null)
        {
            var previous = await store.GetAsync(previousResponseId, owner, cancellationToken) ?? throw PreviousNotFound(previousResponseId);
            instructions ??= previous.Instructions;
            sessionId = previous.SessionId;
            if (explicitHistory is null)
            {
                var chain = await store.GetChainHistoryAsync(previousResponseId, owner, cancellationToken) ?? throw PreviousNotFound(previousResponseId);
                history = [.. chain.Where(m => m.Role != ChatRole.System)];
            }
        }
        if (explicitHistory is not null)
            history = explicitHistory;

        var chainParentId = explicitHistory is null ? previousResponseId : null;
        var items = await InputReferences.ResolveAsync(store, owner, input.Items, chainParentId, cancellationToken);
        var inputMessages = PendingApprovals.Settle(history, ResponsesInput.ToMessages(items, validate: input.Approvals.Count == 0), input.Approvals);
        ValidateToolOutputs(history, inputMessages);
        return new ResolvedConversation(previousResponseId, [.. history, .. inputMessages],
            InstructionText.Join([instructions, .. input.SystemTexts]), sessionId)
        {
            ChainParentId = chainParentId,
            StoredInput = new StoredTurnInput(
                [.. explicitHistory ?? [], .. inputMessages],
                [.. (explicitHistory ?? []).SelectMany(m => ResponseItems.ToItems(ResponseItems.ToStored(m))).Select(ResponseItems.ToStoredItem),
                 .. items.Where(i => i.Listed is not null).Select(i => i.Listed!)]),
            ApprovalAnswers = [.. input.Approvals.Select(a => a.Answer)],
        };
    }

    private static ApiException PreviousNotFound(string id) =>
        ApiException.BadRequest($"Previous response '{id}' was not found.", "previous_response_id", "previous_response_not_found");

    /// <summary>Every function_call_output must answer a call the model made (in the chain or in this input).</summary>
    private static void ValidateToolOutputs(IReadOnlyList<ChatMessage> history, IReadOnlyList<ChatMessage> input)
    {
        if (!input.Any(m => m.Role == ChatRole.Tool))
            return; // nothing to check, and no reason to index a long history's calls
        var calls = history.Concat(input).Where(m => m.ToolCalls is not null).SelectMany(m => m.ToolCalls!).Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var message in input.Where(m => m.Role == ChatRole.Tool))
        {
            if (!calls.Contains(message.ToolCallId!))
                throw ApiException.BadRequest($"No function call with call_id '{message.ToolCallId}' was found in this conversation.", "input", "unknown_call_id");
        }
    }

    /// <summary>
    /// truncation "auto": keeps at most <paramref name="budget"/> messages, cutting at a user message so no tool result loses its call.
    /// The new input is never dropped.
    /// </summary>
    public static IReadOnlyList<ChatMessage> Truncate(IReadOnlyList<ChatMessage> messages, int budget)
    {
        if (messages.Count <= budget)
            return messages;
        for (var start = messages.Count - budget; start < messages.Count; start++)
        {
            if (messages[start].Role == ChatRole.User)
                return [.. messages.Skip(start)];
        }
        // No user message in the window: keep the latest user turn whole rather than orphan tool results.
        var lastUser = messages.Select((m, i) => (m, i)).LastOrDefault(x => x.m.Role == ChatRole.User).i;
        return [.. messages.Skip(lastUser)];
    }
}
