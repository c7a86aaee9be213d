using ApiServer.Access;
using ApiServer.Agent;

namespace ApiServer.Responses.Store;

/// <summary>A message of a stored conversation: what the model is sent. Its item id names it in rows stored before items were.</summary>
public sealed record StoredMessage(string ItemId, ChatMessage Message);

/// <summary>
/// One item of a stored response as the API shows it, with the id it was given when it was first rendered (output) or first
/// received (input). <paramref name="Body"/> is the item's JSON.
/// </summary>
public sealed record StoredItem(string Id, string Body);

/// <summary>
/// One stored response. It holds only what this turn added (<see cref="NewMessages"/>: the new input, then the assistant and
/// tool messages) plus a link to its parent, so an N-turn chain costs O(N) storage.
/// </summary>
public sealed record StoredResponse
{
    public required string Id { get; init; }

    public string? PreviousResponseId { get; init; }

    /// <summary>Conversation this response belongs to; the store maps it to its newest response.</summary>
    public string? ConversationId { get; init; }

    public string? SessionId { get; init; }

    public string? Instructions { get; init; }

    /// <summary>The Response object exactly as the API returned it (JSON text).</summary>
    public required string ResponseJson { get; init; }

    public required IReadOnlyList<StoredMessage> NewMessages { get; init; }

    /// <summary>How many of <see cref="NewMessages"/> were this turn's input; the rest are its output.</summary>
    public required int InputMessageCount { get; init; }

    /// <summary>
    /// This turn's items as the API lists them, input first, each with its one id: what input_items lists and item_reference
    /// finds. Empty for responses stored before items were (their items are derived from <see cref="NewMessages"/>).
    /// </summary>
    public IReadOnlyList<StoredItem> Items { get; init; } = [];

    /// <summary>How many of <see cref="Items"/> were this turn's input; the rest are its output.</summary>
    public int InputItemCount { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>The name of the key that stored it (see <see cref="Access.Owner"/>); "" when no key is configured.</summary>
    public string Owner { get; init; } = "";
}

public enum ListOrder
{
    Asc,
    Desc,
}

/// <summary>
/// One row of a response's input items: a stored item, or (responses stored before items were) a message, which lists as one
/// item or, with several tool calls, as several.
/// </summary>
public sealed record InputItemRow(string ItemId, StoredItem? Item, ChatMessage? Message);

/// <summary>A page of input item rows. <see cref="CursorFound"/> is false when the <c>after</c> item is not among the response's input items.</summary>
public sealed record MessagePage(IReadOnlyList<InputItemRow> Items, bool HasMore, bool CursorFound = true);

/// <summary>
/// Stored Responses API state: responses, their chains, and named conversations. Every read takes the caller's
/// <see cref="Access.Owner"/>: a response another owner stored reads exactly like one that does not exist.
/// </summary>
public interface IResponseStore
{
    /// <summary>Stores a response, updates its conversation's head when it has one, and evicts beyond capacity.</summary>
    Task PutAsync(StoredResponse response, CancellationToken cancellationToken);

    /// <summary>The response, or null. Counts as an access for LRU eviction.</summary>
    Task<StoredResponse?> GetAsync(string id, Owner owner, CancellationToken cancellationToken);

    /// <summary>
    /// Every message of the chain that ends at <paramref name="id"/>, oldest first, including this response's own messages
    /// (tool calls and tool results included). Null when the response is unknown.
    /// </summary>
    Task<IReadOnlyList<StoredMessage>?> GetChainMessagesAsync(string id, Owner owner, CancellationToken cancellationToken);

    /// <summary>The same chain as <see cref="GetChainMessagesAsync"/>, as the messages alone: what a new turn sends the model.</summary>
    Task<IReadOnlyList<ChatMessage>?> GetChainHistoryAsync(string id, Owner owner, CancellationToken cancellationToken);

    /// <summary>
    /// The input items of a response: the chain's messages up to and including this response's input, without its output.
    /// Null when the response is unknown.
    /// </summary>
    Task<MessagePage?> ListInputItemsAsync(string id, Owner owner, int limit, ListOrder order, string? after, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string id, Owner owner, CancellationToken cancellationToken);

    /// <summary>
    /// The stored item with this id (from any visible response's input or output), or null when there is none that
    /// <paramref name="owner"/> may see. One indexed lookup; an item carried into later responses is the same item.
    /// </summary>
    Task<StoredItem?> GetItemAsync(string itemId, Access.Owner owner, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="itemIds"/> are items of the chain that ends at response <paramref name="id"/> (input or output).</summary>
    Task<IReadOnlySet<string>> FindChainItemsAsync(string id, IReadOnlyCollection<string> itemIds, CancellationToken cancellationToken);

    /// <summary>The newest response of a conversation, or null when the conversation has none yet.</summary>
    Task<string?> GetConversationHeadAsync(string conversationId, Owner owner, CancellationToken cancellationToken);

    Task<long> CountAsync(CancellationToken cancellationToken);
}
