using ApiServer.Agent;
using ApiServer.Http;
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

    public IReadOnlyList<ChatMessage> StoredHistory { get; init; } = [];
}

/// <summary>Resolves chaining (previous_response_id, conversation, conversation_history) into the messages for one turn.</summary>
public static class ConversationBuilder
{
    public static async Task<ResolvedConversation> ResolveAsync(IResponseStore store, string? previousResponseId, string? conversationId,
        IReadOnlyList<ChatMessage>? explicitHistory, IReadOnlyList<ChatMessage> input, string? instructions, CancellationToken cancellationToken)
    {
        if (conversationId is not null)
            previousResponseId = await store.GetConversationHeadAsync(conversationId, cancellationToken);

        IReadOnlyList<ChatMessage> history = [];
        string? sessionId = null;
        if (previousResponseId is not null)
        {
            var previous = await store.GetAsync(previousResponseId, cancellationToken)
                ?? throw ApiException.BadRequest($"Previous response '{previousResponseId}' was not found.", "previous_response_id", "previous_response_not_found");
            instructions ??= previous.Instructions;
            sessionId = previous.SessionId;
            if (explicitHistory is null)
                history = await store.GetChainHistoryAsync(previousResponseId, cancellationToken) ?? [];
        }
        if (explicitHistory is not null)
            history = explicitHistory;

        ValidateToolOutputs(history, input);
        return new ResolvedConversation(previousResponseId, [.. history, .. input], instructions, sessionId)
        {
            ChainParentId = explicitHistory is null ? previousResponseId : null,
            StoredHistory = explicitHistory ?? [],
        };
    }

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
