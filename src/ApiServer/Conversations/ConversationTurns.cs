using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Http;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using Microsoft.Extensions.Options;

namespace ApiServer.Conversations;

/// <summary>The stored side of one turn on a conversation: the history it builds on, and whether the conversation is empty.</summary>
public sealed record ConversationHistory(string Id, IReadOnlyList<ChatMessage> Messages, IReadOnlyList<string> SystemTexts, bool IsEmpty);

/// <summary>
/// The one resolver of a conversation id, for the Conversations routes and for <c>conversation</c> on /v1/responses: which
/// stored conversation an id names for this caller, the history a turn on it builds on, and how the turn is appended.
/// </summary>
public sealed partial class ConversationTurns(
    IConversationStore store,
    IResponseStore responses,
    IOptions<ApiServerOptions> options,
    ILogger<ConversationTurns> logger)
{
    public const string IdPrefix = "conv_";

    /// <summary>
    /// The lock a turn holds from reading a conversation to appending to it, so turns of one conversation run one at a time.
    /// An issued id (<see cref="IsConversationId"/>) names one conversation whoever uses it (its owner, or an admin key), so it is
    /// locked as is; any other name is the caller's own (see the conversations table), so another key using the same name
    /// never waits for, nor holds up, this one's turns.
    /// </summary>
    public static string LockKey(string conversation, Owner owner) =>
        "conversation:" + (IsConversationId(conversation) ? conversation : Sessions.SessionIds.Scoped(owner.Name, conversation));

    /// <summary>
    /// True when a <c>conversation</c> value on /v1/responses is a Conversations API id rather than a hermes-style name: it has
    /// the shape of the ids this server issues (<c>conv_</c> and 32 hex digits). Any other value, <c>conv_chat</c> included,
    /// keeps the meaning it had before this API existed.
    /// </summary>
    public static bool IsConversationId(string? conversation) =>
        conversation is { Length: 37 } && conversation.StartsWith(IdPrefix, StringComparison.Ordinal) && !conversation.AsSpan(5).ContainsAnyExcept("0123456789abcdef");

    /// <summary>The caller's conversation with this id; a malformed id is a 400, an unknown one (or another owner's) a 404.</summary>
    public async Task<ConversationRecord> FindAsync(string id, Owner owner, string param, CancellationToken cancellationToken)
    {
        if (!id.StartsWith(IdPrefix, StringComparison.Ordinal) || id.Length > 256)
            throw ApiException.BadRequest($"Invalid '{param}': '{(id.Length > 64 ? id[..64] + "…" : id)}'. Expected an id that begins with '{IdPrefix}'.",
                param, "invalid_value");
        var record = await store.GetAsync(id, cancellationToken);
        return record is not null && owner.Owns(record.Owner) ? record : throw NotFound(id, param);
    }

    public static ApiException NotFound(string id, string param) =>
        ApiException.NotFound($"Conversation '{id}' was not found.", "not_found", param);

    public static ApiException TooLarge(string param, long maxBytes) =>
        ApiException.BadRequest($"The conversation would hold more than {maxBytes} bytes of items (API_SERVER_CONVERSATION_MAX_BYTES); start a new conversation.",
            param, "conversation_too_large");

    /// <summary>
    /// For /v1/responses, called holding <see cref="LockKey"/>: the conversation a <c>conv_</c> value names and its history.
    /// Null when the value is a hermes-style name: one not shaped like an issued id, or one hermes-style turns already used.
    /// </summary>
    /// <param name="inputBytes">What this turn's input adds; a conversation it would take past the cap is refused before the turn.</param>
    public async Task<ConversationHistory?> LoadAsync(string conversation, Owner owner, long inputBytes, CancellationToken cancellationToken)
    {
        if (!IsConversationId(conversation))
            return null;
        var record = await store.GetAsync(conversation, cancellationToken);
        if (record is null || !owner.Owns(record.Owner))
        {
            if (await responses.GetConversationHeadAsync(conversation, owner, cancellationToken) is not null)
                return null;
            throw NotFound(conversation, "conversation");
        }
        if (record.Bytes + inputBytes > options.Value.ConversationMaxBytes)
            throw TooLarge("conversation", options.Value.ConversationMaxBytes);
        var items = await store.GetItemsAsync(record.Id, cancellationToken);
        var (messages, systemTexts) = await ConversationItems.ToHistoryAsync(items, responses, owner, cancellationToken);
        return new ConversationHistory(record.Id, messages, systemTexts, items.Count == 0);
    }

    /// <summary>
    /// Appends a turn that produced an answer (completed, or cut short and kept as incomplete): its input, then its output under
    /// the ids the Response shows. A failed turn adds nothing, so the client can send the same input again. The cap was checked
    /// before the turn; what the turn itself produced is always kept whole.
    /// </summary>
    public async Task AppendTurnAsync(string id, IReadOnlyList<ConversationItem> input, ResponseObject response)
    {
        if (response.Status is not ("completed" or "incomplete"))
            return;
        try
        {
            // No token: a client that left, or a server that is stopping, still gets the turn recorded.
            var outcome = await store.AppendAsync(id, [.. input, .. ConversationItems.FromOutput(response.Output)], long.MaxValue, CancellationToken.None);
            if (outcome == AppendOutcome.NotFound)
                LogAppendFailed(logger, response.Id, id, null);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or TimeoutException or InvalidOperationException) // either backend
        {
            LogAppendFailed(logger, response.Id, id, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Response {ResponseId} could not be added to conversation {ConversationId}")]
    private static partial void LogAppendFailed(ILogger logger, string responseId, string conversationId, Exception? exception);
}
