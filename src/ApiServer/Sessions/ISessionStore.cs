using ApiServer.Agent;

namespace ApiServer.Sessions;

public sealed record SessionSummary(
    string Id,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string Title,
    string Model,
    long InputTokens,
    long OutputTokens,
    int MessageCount);

public enum StoredMessageStatus
{
    Complete,
    Streaming,
    Interrupted,
}

public sealed record SessionMessage(long Id, ChatMessage Message, StoredMessageStatus Status);

/// <summary>
/// One turn of a session. <see cref="PriorIfNew"/> is the conversation the client sent before this turn; it is stored only when
/// the session does not exist yet (a derived session seen for the first time), so history is never stored twice.
/// </summary>
public sealed record SessionTurn(string SessionId, string Model, IReadOnlyList<ChatMessage> PriorIfNew, IReadOnlyList<ChatMessage> Input)
{
    /// <summary>The name of the key the session belongs to (see <see cref="Access.Owner"/>).</summary>
    public string Owner { get; init; } = "";
}

/// <summary>
/// Chat sessions and their turns. A streamed turn is begun with its input, streamed into a draft, then completed or abandoned;
/// a non-streamed turn is appended in one write.
/// <para>
/// A session id is namespaced by its owner (the key's name, "" without keys): two keys naming the same id have two separate
/// sessions, so another key's X-Session-Id behaves as a new, unknown session and never reads or appends to this one.
/// </para>
/// </summary>
public interface ISessionStore
{
    /// <summary>Creates the session if needed, stores the turn's input, and opens a streaming draft for the answer. Returns the draft's id.</summary>
    Task<long> BeginTurnAsync(SessionTurn turn, CancellationToken cancellationToken);

    /// <summary>Stores a whole turn at once: input, the messages the run appended, and usage.</summary>
    Task AppendTurnAsync(SessionTurn turn, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken);

    /// <summary>Saves the answer's text so far, so a crash loses at most one flush interval.</summary>
    Task UpdateDraftAsync(long draftId, string text, CancellationToken cancellationToken);

    /// <summary>Replaces the draft with the messages the run appended (tool calls, tool results, answer) and adds the usage.</summary>
    Task CompleteTurnAsync(string sessionId, string owner, long draftId, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken);

    /// <summary>Ends a turn that did not complete: keeps partial text as an interrupted message, or drops an empty draft.</summary>
    Task AbandonTurnAsync(long draftId, string partialText, CancellationToken cancellationToken);

    /// <summary>Removes a begun turn (its input and draft) that was answered with an HTTP error, and the session if that leaves it empty.</summary>
    Task DiscardTurnAsync(string sessionId, string owner, long draftId, CancellationToken cancellationToken);

    /// <summary>The session's conversation in order (complete and interrupted messages), or empty when it does not exist.</summary>
    Task<IReadOnlyList<ChatMessage>> LoadHistoryAsync(string sessionId, string owner, CancellationToken cancellationToken);

    Task<SessionSummary?> GetAsync(string sessionId, string owner, CancellationToken cancellationToken);

    Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(string sessionId, string owner, CancellationToken cancellationToken);

    /// <summary>Marks rows left streaming by a crash as interrupted. Returns how many.</summary>
    Task<int> RecoverInterruptedAsync(CancellationToken cancellationToken);
}
