using System.Text.Json;
using ApiServer.Data;
using ApiServer.Responses.Store;
using Dapper;

namespace ApiServer.Conversations;

/// <summary>
/// Conversations in <c>conversations.db</c>. Items are rows in append order (an autoincrement sequence), so paging is an index
/// range; the conversation row keeps the items' total bytes so the cap is checked without reading them.
/// </summary>
public sealed partial class SqliteConversationStore(SqliteDatabase database) : IConversationStore, IAsyncDisposable
{
    public const string FileName = "conversations.db";

    public bool IsPersistent => database.IsPersistent;

    public Task CreateAsync(ConversationRecord conversation, IReadOnlyList<ConversationItem> items, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(InsertConversation, new
            {
                conversation.Id, conversation.Owner, CreatedAt = conversation.CreatedAt.ToUnixTimeSeconds(),
                Metadata = SerializeMetadata(conversation.Metadata), Bytes = items.Sum(i => i.Bytes),
            }, t, cancellationToken: cancellationToken));
            foreach (var item in items)
                await c.ExecuteAsync(new CommandDefinition(InsertItem, new { ConversationId = conversation.Id, ItemId = item.Id, Body = item.Json }, t,
                    cancellationToken: cancellationToken));
            return 0;
        }, cancellationToken);

    public async Task<ConversationRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await ConversationReads.GetAsync(connection, SelectConversation, id, cancellationToken);
    }

    public async Task<bool> UpdateMetadataAsync(string id, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken) =>
        await database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(UpdateMetadata, new { id, metadata = SerializeMetadata(metadata) }, t,
            cancellationToken: cancellationToken)), cancellationToken) == 1;

    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(DeleteItems, new { id }, t, cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(DeleteConversation, new { id }, t, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    public Task<AppendOutcome> AppendAsync(string id, IReadOnlyList<ConversationItem> items, long maxBytes, CancellationToken cancellationToken)
    {
        var added = items.Sum(i => i.Bytes);
        return database.WriteAsync(async (c, t) =>
        {
            // Read and add under the single writer, so two appends can't both fit under the cap and together pass it.
            var bytes = await c.ExecuteScalarAsync<long?>(new CommandDefinition(SelectBytes, new { id }, t, cancellationToken: cancellationToken));
            if (bytes is null)
                return AppendOutcome.NotFound;
            if (bytes.Value + added > maxBytes)
                return AppendOutcome.TooLarge;
            foreach (var item in items)
                await c.ExecuteAsync(new CommandDefinition(InsertItem, new { ConversationId = id, ItemId = item.Id, Body = item.Json }, t,
                    cancellationToken: cancellationToken));
            await c.ExecuteAsync(new CommandDefinition(AddBytes, new { id, bytes = added }, t, cancellationToken: cancellationToken));
            return AppendOutcome.Appended;
        }, cancellationToken);
    }

    public async Task<ConversationItemPage> ListItemsAsync(string id, int limit, ListOrder order, string? after, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await ConversationReads.ListItemsAsync(connection, id, limit, order, after, cancellationToken);
    }

    public async Task<IReadOnlyList<ConversationItem>> GetItemsAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await ConversationReads.GetItemsAsync(connection, id, cancellationToken);
    }

    public async Task<ConversationItem?> GetItemAsync(string id, string itemId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await ConversationReads.GetItemAsync(connection, id, itemId, cancellationToken);
    }

    public Task<bool> DeleteItemAsync(string id, string itemId, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(DeleteItem, new { id, itemId }, t, cancellationToken: cancellationToken)) is not { } bytes)
                return false;
            await c.ExecuteAsync(new CommandDefinition(AddBytes, new { id, bytes = -bytes }, t, cancellationToken: cancellationToken));
            return true;
        }, cancellationToken);

    public ValueTask DisposeAsync() => database.DisposeAsync();

    internal static string SerializeMetadata(IReadOnlyDictionary<string, string> metadata) =>
        JsonSerializer.Serialize(metadata.ToDictionary(), ConversationsJsonContext.Default.DictionaryStringString);

    internal static IReadOnlyDictionary<string, string> DeserializeMetadata(string json) =>
        JsonSerializer.Deserialize(json, ConversationsJsonContext.Default.DictionaryStringString) ?? [];

    internal sealed record ConversationRow(string Id, string Owner, long CreatedAt, string Metadata, long Bytes);

    internal sealed record ItemRow(string Id, string Json)
    {
        public ConversationItem ToItem() => new(Id, Json);
    }
}
