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
    ];

    // Whether the caller (@owner, or @all for an admin key) may see a response row: another owner's row reads as absent.
    private const string Visible = "(@all OR owner = @owner)";

    private const string SelectParent = "SELECT seq AS Seq, depth AS Depth FROM responses WHERE id = @id;";

    private const string InsertResponse =
        """
        INSERT INTO responses (id, parent_seq, previous_response_id, depth, conversation_id, session_id, instructions,
                               response_json, input_message_count, created_at, last_accessed_at, items_stored, owner)
        VALUES (@Id, @ParentSeq, @PreviousResponseId, @Depth, @ConversationId, @SessionId, @Instructions,
                @ResponseJson, @InputMessageCount, @CreatedAt, @LastAccessedAt, @ItemsStored, @Owner)
        ON CONFLICT (id) DO NOTHING
        RETURNING seq;
        """;

    private const string IncrementChildCount = "UPDATE responses SET child_count = child_count + 1 WHERE seq = @seq;";

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

    // Only the owner of a conversation's head moves it: another key naming the same conversation never redirects its history.
    private const string UpsertConversationHead =
        """
        INSERT INTO conversations (conversation_id, head_seq) VALUES (@conversationId, @seq)
        ON CONFLICT (conversation_id) DO UPDATE SET head_seq = excluded.head_seq
        WHERE (SELECT owner FROM responses WHERE seq = conversations.head_seq) = @owner;
        """;

    private const string SelectVisibleResponse =
        """
        SELECT seq AS Seq, id AS Id, previous_response_id AS PreviousResponseId, conversation_id AS ConversationId,
               session_id AS SessionId, instructions AS Instructions, response_json AS ResponseJson,
               input_message_count AS InputMessageCount, created_at AS CreatedAt, owner AS Owner
        FROM responses WHERE id = @id AND deleted = 0 AND
        """ + Visible + ";";

    private const string SelectVisibleSeq = "SELECT seq FROM responses WHERE id = @id AND deleted = 0 AND " + Visible + ";";

    private const string SelectOwnMessages =
        "SELECT item_id AS ItemId, body AS Body FROM response_messages WHERE response_seq = @seq ORDER BY ordinal;";

    private const string Touch = "UPDATE responses SET last_accessed_at = @now WHERE seq = @seq;";

    private const string SelectChainItemIds = ResponseStoreSql.SelectChainItemIdsWhereItemId + "IN @itemIds;";

    private const string SelectConversationHead =
        """
        SELECT r.id FROM conversations c JOIN responses r ON r.seq = c.head_seq
        WHERE c.conversation_id = @conversationId AND r.deleted = 0 AND (@all OR r.owner = @owner);
        """;

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

    // Nearest ancestor of @parent (itself included) that is not deleted.
    private const string SelectNearestVisibleAncestor =
        """
        WITH RECURSIVE up (seq, parent_seq, deleted) AS (
            SELECT seq, parent_seq, deleted FROM responses WHERE seq = @parent
            UNION ALL
            SELECT r.seq, r.parent_seq, r.deleted FROM responses r JOIN up u ON r.seq = u.parent_seq WHERE u.deleted = 1
        )
        SELECT seq FROM up WHERE deleted = 0 LIMIT 1;
        """;

    private const string MoveConversationHeads = "UPDATE conversations SET head_seq = @newHead WHERE head_seq = @seq;";

    private const string DeleteConversationsWithHead = "DELETE FROM conversations WHERE head_seq = @seq;";

    private const string SelectParentSeq = "SELECT parent_seq FROM responses WHERE seq = @seq;";

    private const string DeleteResponseRow = "DELETE FROM responses WHERE seq = @seq;";

    private const string DecrementChildCount =
        "UPDATE responses SET child_count = child_count - 1 WHERE seq = @seq RETURNING child_count AS ChildCount, deleted AS Deleted;";

    private const string SelectPayloadBytes =
        """
        SELECT (SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM response_messages)
             + (SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM response_items)
             + (SELECT COALESCE(SUM(LENGTH(CAST(response_json AS BLOB))), 0) FROM responses);
        """;
}
