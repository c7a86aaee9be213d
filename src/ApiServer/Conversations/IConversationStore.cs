using ApiServer.Responses.Store;

namespace ApiServer.Conversations;

/// <summary>A conversation as stored: who made it, when, its metadata, and how many bytes its items take.</summary>
public sealed record ConversationRecord(string Id, string Owner, DateTimeOffset CreatedAt, IReadOnlyDictionary<string, string> Metadata, long Bytes = 0);

/// <summary>One item of a conversation: its id and its JSON exactly as the API lists it.</summary>
public sealed record ConversationItem(string Id, string Json)
{
    /// <summary>What the item counts against a conversation's byte cap (UTF-8 length of its JSON).</summary>
    public long Bytes => System.Text.Encoding.UTF8.GetByteCount(Json);

    /// <summary>
    /// As received, an item that names a stored item (item_reference, an mcp_call without its output); never stored as such:
    /// <see cref="ConversationItems.ResolveReferencesAsync"/> replaces it by the item it names.
    /// </summary>
    public Responses.InputItem? Reference { get; init; }
}

/// <summary>A page of items. <see cref="CursorFound"/> is false when the <c>after</c> item is not in the conversation.</summary>
public sealed record ConversationItemPage(IReadOnlyList<ConversationItem> Items, bool HasMore, bool CursorFound = true);

public enum AppendOutcome
{
    Appended,
    NotFound,
    TooLarge,
}

/// <summary>
/// Stored conversations (the Conversations API) and their ordered items. Backend-neutral: ids are strings, order is the order
/// items were appended, and ownership is only recorded here (callers decide who may see what, see Access/Owner).
/// </summary>
public interface IConversationStore
{
    /// <summary>Stores a new conversation with its first items (in order).</summary>
    Task CreateAsync(ConversationRecord conversation, IReadOnlyList<ConversationItem> items, CancellationToken cancellationToken);

    /// <summary>The conversation, or null.</summary>
    Task<ConversationRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Replaces the metadata; false when the conversation is unknown.</summary>
    Task<bool> UpdateMetadataAsync(string id, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken);

    /// <summary>Deletes the conversation and its items; false when it is unknown.</summary>
    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Appends items after the existing ones, atomically: all or none. <see cref="AppendOutcome.TooLarge"/> (nothing appended)
    /// when the items would take the conversation past <paramref name="maxBytes"/>.
    /// </summary>
    Task<AppendOutcome> AppendAsync(string id, IReadOnlyList<ConversationItem> items, long maxBytes, CancellationToken cancellationToken);

    /// <summary>A page of items in append order (or reversed), starting after the item <paramref name="after"/> when given.</summary>
    Task<ConversationItemPage> ListItemsAsync(string id, int limit, ListOrder order, string? after, CancellationToken cancellationToken);

    /// <summary>Every item, oldest first: the history a turn on this conversation builds on.</summary>
    Task<IReadOnlyList<ConversationItem>> GetItemsAsync(string id, CancellationToken cancellationToken);

    Task<ConversationItem?> GetItemAsync(string id, string itemId, CancellationToken cancellationToken);

    /// <summary>Deletes one item; false when the conversation holds no item with that id.</summary>
    Task<bool> DeleteItemAsync(string id, string itemId, CancellationToken cancellationToken);
}
