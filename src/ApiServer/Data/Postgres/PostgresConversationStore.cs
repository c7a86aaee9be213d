using ApiServer.Conversations;
using ListOrder = ApiServer.Responses.Store.ListOrder;
using Dapper;
using Npgsql;
using static ApiServer.Conversations.SqliteConversationStore;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Conversations on PostgreSQL: the SQLite store's rows (see SqliteConversationStore). An append or item delete locks the
/// conversation's row first, so the byte total and the cap check stay exact while replicas append to one conversation at once,
/// and items of one conversation are numbered in the order their appends committed.
/// </summary>
public sealed class PostgresConversationStore(PostgresDatabase database) : IConversationStore
{
    // conversations_api: the responses store already has a conversations table (the heads of named conversations).
    internal const string Schema =
        """
        CREATE TABLE conversations_api (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL DEFAULT '',
            created_at BIGINT NOT NULL,
            metadata TEXT NOT NULL,
            bytes BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE conversation_items (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (conversation_id, item_id)
        );
        CREATE INDEX ix_conversation_items_order ON conversation_items (conversation_id, seq);
        """;

    private const string InsertConversation =
        "INSERT INTO conversations_api (id, owner, created_at, metadata, bytes) VALUES (@Id, @Owner, @CreatedAt, @Metadata, @Bytes);";

    private const string SelectConversation =
        "SELECT id AS Id, owner AS Owner, created_at AS CreatedAt, metadata AS Metadata, bytes AS Bytes FROM conversations_api WHERE id = @id;";

    private const string UpdateMetadata = "UPDATE conversations_api SET metadata = @metadata WHERE id = @id;";

    private const string DeleteConversation = "DELETE FROM conversations_api WHERE id = @id;";

    private const string LockBytes = "SELECT bytes FROM conversations_api WHERE id = @id FOR UPDATE;";

    private const string AddBytes = "UPDATE conversations_api SET bytes = bytes + @bytes WHERE id = @id;";

    private const string InsertItems =
        """
        INSERT INTO conversation_items (conversation_id, item_id, body)
        SELECT @id, i.item_id, i.body FROM unnest(@itemIds, @bodies) WITH ORDINALITY AS i (item_id, body, ordinal) ORDER BY i.ordinal;
        """;

    private const string DeleteItem =
        "DELETE FROM conversation_items WHERE conversation_id = @id AND item_id = @itemId RETURNING octet_length(body)::BIGINT;";

    public Task CreateAsync(ConversationRecord conversation, IReadOnlyList<ConversationItem> items, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(InsertConversation, new
            {
                conversation.Id, conversation.Owner, CreatedAt = conversation.CreatedAt.ToUnixTimeSeconds(),
                Metadata = SerializeMetadata(conversation.Metadata), Bytes = items.Sum(i => i.Bytes),
            }, t, cancellationToken: cancellationToken));
            await InsertItemsAsync(c, t, conversation.Id, items, cancellationToken);
            return 0;
        }, cancellationToken);

    public async Task<ConversationRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await ConversationReads.GetAsync(connection, SelectConversation, id, cancellationToken);
    }

    public async Task<bool> UpdateMetadataAsync(string id, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(UpdateMetadata, new { id, metadata = SerializeMetadata(metadata) },
            cancellationToken: cancellationToken)) == 1;
    }

    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(DeleteItems, new { id }, t, cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(DeleteConversation, new { id }, t, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    public Task<AppendOutcome> AppendAsync(string id, IReadOnlyList<ConversationItem> items, long maxBytes, CancellationToken cancellationToken)
    {
        var added = items.Sum(i => i.Bytes);
        return database.InTransactionAsync(async (c, t) =>
        {
            // The row lock: two appends (on any replicas) can't both fit under the cap and together pass it.
            var bytes = await c.ExecuteScalarAsync<long?>(new CommandDefinition(LockBytes, new { id }, t, cancellationToken: cancellationToken));
            if (bytes is null)
                return AppendOutcome.NotFound;
            if (bytes.Value + added > maxBytes)
                return AppendOutcome.TooLarge;
            await InsertItemsAsync(c, t, id, items, cancellationToken);
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
        database.InTransactionAsync(async (c, t) =>
        {
            if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(LockBytes, new { id }, t, cancellationToken: cancellationToken)) is null
                || await c.ExecuteScalarAsync<long?>(new CommandDefinition(DeleteItem, new { id, itemId }, t, cancellationToken: cancellationToken)) is not { } bytes)
                return false;
            await c.ExecuteAsync(new CommandDefinition(AddBytes, new { id, bytes = -bytes }, t, cancellationToken: cancellationToken));
            return true;
        }, cancellationToken);

    private static async Task InsertItemsAsync(NpgsqlConnection c, NpgsqlTransaction t, string id, IReadOnlyList<ConversationItem> items, CancellationToken cancellationToken)
    {
        if (items.Count == 0)
            return;
        await c.ExecuteAsync(new CommandDefinition(InsertItems, new { id, itemIds = items.Select(i => i.Id).ToArray(), bodies = items.Select(i => i.Json).ToArray() }, t,
            cancellationToken: cancellationToken));
    }
}
