using static ApiServer.Responses.Store.ResponseStoreSql;

namespace ApiServer.Responses.Store;

public sealed partial class SqliteResponseStore
{
    /// <summary>Schema versions, applied in order by <see cref="Data.SqliteDatabase"/>. Append only; never edit a shipped entry.</summary>
    internal static readonly IReadOnlyList<string> Migrations =
    [
        // v1. responses.seq is the integer key every link uses (parent_seq, response_seq, head_seq), so a message row and a
        // chain hop cost an integer, not a repeated text id. depth orders a chain without counting hops at read time.
        // child_count is the number of stored rows whose parent_seq is this row; 0 means "leaf", the only evictable kind.
        // deleted = 1 hides a response the user deleted while descendants still need its messages.
        """
        CREATE TABLE responses (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            parent_seq INTEGER NULL,
            previous_response_id TEXT NULL,
            depth INTEGER NOT NULL,
            conversation_id TEXT NULL,
            session_id TEXT NULL,
            instructions TEXT NULL,
            response_json TEXT NOT NULL,
            input_message_count INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            last_accessed_at INTEGER NOT NULL,
            child_count INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ix_responses_evictable ON responses (last_accessed_at, seq) WHERE child_count = 0 AND deleted = 0;
        CREATE TABLE response_messages (
            response_seq INTEGER NOT NULL,
            ordinal INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            is_input INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (response_seq, ordinal)
        );
        CREATE TABLE conversations (
            conversation_id TEXT NOT NULL PRIMARY KEY,
            head_seq INTEGER NOT NULL
        );
        CREATE INDEX ix_conversations_head ON conversations (head_seq);
        """,

        // v2. The number of visible responses, kept by triggers in the same transaction as every change, so the capacity
        // check on each write and the health probe read one row instead of scanning the responses table.
        """
        CREATE TABLE response_stats (id INTEGER PRIMARY KEY CHECK (id = 1), visible INTEGER NOT NULL);
        INSERT INTO response_stats (id, visible) SELECT 1, COUNT(*) FROM responses WHERE deleted = 0;
        CREATE TRIGGER tr_responses_count_insert AFTER INSERT ON responses WHEN NEW.deleted = 0
        BEGIN UPDATE response_stats SET visible = visible + 1 WHERE id = 1; END;
        CREATE TRIGGER tr_responses_count_delete AFTER DELETE ON responses WHEN OLD.deleted = 0
        BEGIN UPDATE response_stats SET visible = visible - 1 WHERE id = 1; END;
        CREATE TRIGGER tr_responses_count_hide AFTER UPDATE OF deleted ON responses WHEN OLD.deleted <> NEW.deleted
        BEGIN UPDATE response_stats SET visible = visible + (CASE WHEN NEW.deleted = 0 THEN 1 ELSE -1 END) WHERE id = 1; END;
        """,

        // v3. Items with the ids they were given once, when first rendered or received, so an item keeps its id in output,
        // GET, later input_items and item_reference. Messages stay what the model is sent. items_stored = 0 marks rows
        // written before this version: their items are still derived from their messages when listed.
        // owner is the key that stored the item: item_reference finds only the caller's own items.
        """
        CREATE TABLE response_items (
            response_seq INTEGER NOT NULL,
            ordinal INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            is_input INTEGER NOT NULL,
            body TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (response_seq, ordinal)
        );
        CREATE INDEX ix_response_items_item_id ON response_items (item_id, response_seq);
        ALTER TABLE responses ADD COLUMN items_stored INTEGER NOT NULL DEFAULT 0;
        """,

        // v4. The name of the key that stored each response (Access/Owner.cs); rows from before keys owned objects belong to
        // the anonymous owner ''.
        "ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT '';",

        // v5. A conversation name belongs to the key that uses it (keyed by owner and name), so another key naming "chat" neither
        // takes over nor hides this key's conversation. An existing head keeps the owner of the response it points at.
        """
        CREATE TABLE conversations_by_owner (
            owner TEXT NOT NULL DEFAULT '',
            conversation_id TEXT NOT NULL,
            head_seq INTEGER NOT NULL,
            PRIMARY KEY (owner, conversation_id)
        );
        INSERT INTO conversations_by_owner (owner, conversation_id, head_seq)
        SELECT COALESCE(r.owner, ''), c.conversation_id, c.head_seq FROM conversations c LEFT JOIN responses r ON r.seq = c.head_seq;
        DROP TABLE conversations;
        ALTER TABLE conversations_by_owner RENAME TO conversations;
        CREATE INDEX ix_conversations_head ON conversations (head_seq);
        """,
    ];

    private const string SelectParent = "SELECT seq AS Seq, depth AS Depth FROM responses WHERE id = @id;";

    private const string InsertMessage =
        """
        INSERT INTO response_messages (response_seq, ordinal, item_id, is_input, body)
        VALUES (@ResponseSeq, @Ordinal, @ItemId, @IsInput, @Body);
        """;

    private const string InsertItem =
        """
        INSERT INTO response_items (response_seq, ordinal, item_id, is_input, body, owner)
        VALUES (@ResponseSeq, @Ordinal, @ItemId, @IsInput, @Body, @Owner);
        """;

    private const string Touch = "UPDATE responses SET last_accessed_at = @now WHERE seq = @seq;";

    private const string SelectChainItemIds = ResponseStoreSql.SelectChainItemIdsWhereItemId + "IN @itemIds;";

    private const string CountVisible = "SELECT visible FROM response_stats WHERE id = 1;";

    // Matches ix_responses_evictable's WHERE clause exactly, so the planner walks that partial index in LRU order.
    private const string SelectLeastRecentLeaf =
        """
        SELECT seq FROM responses
        WHERE child_count = 0 AND deleted = 0 AND seq <> @keep
        ORDER BY last_accessed_at, seq LIMIT 1;
        """;

    private const string SelectForDelete =
        "SELECT seq AS Seq, parent_seq AS ParentSeq, child_count AS ChildCount FROM responses WHERE id = @id AND deleted = 0 AND " + Visible + ";";

    private const string Hide = "UPDATE responses SET deleted = 1 WHERE seq = @seq;";

    private const string SelectParentSeq = "SELECT parent_seq FROM responses WHERE seq = @seq;";

    private const string DeleteResponseRow = "DELETE FROM responses WHERE seq = @seq;";

    private const string SelectPayloadBytes =
        """
        SELECT (SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM response_messages)
             + (SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM response_items)
             + (SELECT COALESCE(SUM(LENGTH(CAST(response_json AS BLOB))), 0) FROM responses);
        """;
}
