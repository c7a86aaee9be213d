namespace ApiServer.Conversations;

public sealed partial class SqliteConversationStore
{
    public static readonly IReadOnlyList<string> Migrations =
    [
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            metadata TEXT NOT NULL,
            bytes INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE conversation_items (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (conversation_id, item_id)
        );
        CREATE INDEX ix_conversation_items_order ON conversation_items (conversation_id, seq);
        """,
    ];

    private const string InsertConversation =
        "INSERT INTO conversations (id, owner, created_at, metadata, bytes) VALUES (@Id, @Owner, @CreatedAt, @Metadata, @Bytes);";

    private const string SelectConversation =
        "SELECT id AS Id, owner AS Owner, created_at AS CreatedAt, metadata AS Metadata, bytes AS Bytes FROM conversations WHERE id = @id;";

    private const string UpdateMetadata = "UPDATE conversations SET metadata = @metadata WHERE id = @id;";

    internal const string DeleteItems = "DELETE FROM conversation_items WHERE conversation_id = @id;";

    private const string DeleteConversation = "DELETE FROM conversations WHERE id = @id;";

    private const string SelectBytes = "SELECT bytes FROM conversations WHERE id = @id;";

    private const string AddBytes = "UPDATE conversations SET bytes = bytes + @bytes WHERE id = @id;";

    private const string InsertItem = "INSERT INTO conversation_items (conversation_id, item_id, body) VALUES (@ConversationId, @ItemId, @Body);";

    internal const string SelectCursor = "SELECT seq FROM conversation_items WHERE conversation_id = @id AND item_id = @after;";

    internal const string SelectPageAsc = """
        SELECT item_id AS Id, body AS Json FROM conversation_items
        WHERE conversation_id = @id AND seq > @cursor ORDER BY seq LIMIT @take;
        """;

    internal const string SelectPageDesc = """
        SELECT item_id AS Id, body AS Json FROM conversation_items
        WHERE conversation_id = @id AND seq < @cursor ORDER BY seq DESC LIMIT @take;
        """;

    internal const string SelectAllItems =
        "SELECT item_id AS Id, body AS Json FROM conversation_items WHERE conversation_id = @id ORDER BY seq;";

    internal const string SelectItem =
        "SELECT item_id AS Id, body AS Json FROM conversation_items WHERE conversation_id = @id AND item_id = @itemId;";

    private const string DeleteItem =
        "DELETE FROM conversation_items WHERE conversation_id = @id AND item_id = @itemId RETURNING length(CAST(body AS BLOB));";
}
