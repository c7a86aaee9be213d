namespace ApiServer.Responses.Store;

/// <summary>
/// The response store SQL that reads the same in SQLite and PostgreSQL, shared by both stores so a fix reaches both. It is
/// written to run unchanged on both: flags are tested as truth values (NOT deleted, is_input) since SQLite's 0/1 integers
/// and PostgreSQL's booleans both read that way, and a nullable parameter is CAST so PostgreSQL knows its type.
/// </summary>
internal static class ResponseStoreSql
{
    // Walks parent links from @seq to the root: one primary-key lookup per hop, all inside one statement. Hidden (deleted)
    // ancestors are walked too: their messages are still part of every descendant's history.
    internal const string ChainCte =
        """
        WITH RECURSIVE chain (seq, parent_seq, depth) AS (
            SELECT seq, parent_seq, depth FROM responses WHERE seq = @seq
            UNION ALL
            SELECT r.seq, r.parent_seq, r.depth FROM responses r JOIN chain c ON r.seq = c.parent_seq
        )
        """;

    internal const string SelectChainMessages =
        ChainCte +
        """
        SELECT m.item_id AS ItemId, m.body AS Body
        FROM chain c JOIN response_messages m ON m.response_seq = c.seq
        ORDER BY c.depth, m.ordinal;
        """;

    // The chain's items; each store ends it with its own test of the id list (SQLite expands a list, PostgreSQL takes an array).
    internal const string SelectChainItemIdsWhereItemId =
        ChainCte +
        """
        SELECT DISTINCT i.item_id FROM chain c JOIN response_items i ON i.response_seq = c.seq WHERE i.item_id 
        """;

    // Walks ix_response_items_item_id; the oldest visible row first, so an item carried into later turns is found where it began.
    internal const string SelectItemById =
        """
        SELECT i.item_id AS ItemId, i.body AS Body
        FROM response_items i JOIN responses r ON r.seq = i.response_seq
        WHERE i.item_id = @itemId AND NOT r.deleted AND (@seesAll OR i.owner = @owner)
        ORDER BY i.response_seq LIMIT 1;
        """;

    // The input items: the whole chain except this response's own output. pos numbers them in chain order so an item id
    // cursor becomes a position; an unknown cursor compares with NULL and yields an empty page. A response stored before
    // items were (items_stored false) contributes its message rows instead (is_item = 0), listed as items derived from them.
    private const string InputItemsCte =
        ChainCte +
        """
        , listed AS (
            SELECT c.depth, i.ordinal, i.item_id, i.body, 1 AS is_item
            FROM chain c JOIN response_items i ON i.response_seq = c.seq
            WHERE c.seq <> @seq OR i.is_input
            UNION ALL
            SELECT c.depth, m.ordinal, m.item_id, m.body, 0 AS is_item
            FROM chain c JOIN responses r ON r.seq = c.seq JOIN response_messages m ON m.response_seq = c.seq
            WHERE NOT r.items_stored AND (c.seq <> @seq OR m.is_input)
        ), items AS MATERIALIZED (
            SELECT item_id, body, is_item, ROW_NUMBER() OVER (ORDER BY depth, ordinal) AS pos FROM listed
        )
        """;

    internal const string SelectInputItemsAsc =
        InputItemsCte +
        """
        SELECT item_id AS ItemId, body AS Body, is_item AS IsItem FROM items
        WHERE CAST(@after AS TEXT) IS NULL OR pos > (SELECT pos FROM items WHERE item_id = CAST(@after AS TEXT) LIMIT 1)
        ORDER BY pos LIMIT @take;
        """;

    internal const string SelectInputItemsDesc =
        InputItemsCte +
        """
        SELECT item_id AS ItemId, body AS Body, is_item AS IsItem FROM items
        WHERE CAST(@after AS TEXT) IS NULL OR pos < (SELECT pos FROM items WHERE item_id = CAST(@after AS TEXT) LIMIT 1)
        ORDER BY pos DESC LIMIT @take;
        """;

    internal const string InputItemExists = InputItemsCte + "SELECT EXISTS (SELECT 1 FROM items WHERE item_id = CAST(@after AS TEXT));";

    internal const string DeleteMessages =
        "DELETE FROM response_messages WHERE response_seq = @seq; DELETE FROM response_items WHERE response_seq = @seq;";

    // Whether the caller (@owner, or @all for an admin key) may see a response row: another owner's row reads as absent.
    internal const string Visible = "(@all OR owner = @owner)";

    internal const string InsertResponse =
        """
        INSERT INTO responses (id, parent_seq, previous_response_id, depth, conversation_id, session_id, instructions,
                               response_json, input_message_count, created_at, last_accessed_at, items_stored, owner)
        VALUES (@Id, @ParentSeq, @PreviousResponseId, @Depth, @ConversationId, @SessionId, @Instructions,
                @ResponseJson, @InputMessageCount, @CreatedAt, @LastAccessedAt, @ItemsStored, @Owner)
        ON CONFLICT (id) DO NOTHING
        RETURNING seq;
        """;

    internal const string IncrementChildCount = "UPDATE responses SET child_count = child_count + 1 WHERE seq = @seq;";

    // A conversation name is the owner's own: two keys naming "chat" keep two conversations, neither can move the other's head.
    internal const string UpsertConversationHead =
        """
        INSERT INTO conversations (owner, conversation_id, head_seq) VALUES (@owner, @conversationId, @seq)
        ON CONFLICT (owner, conversation_id) DO UPDATE SET head_seq = excluded.head_seq;
        """;

    internal const string SelectVisibleResponse =
        """
        SELECT seq AS Seq, id AS Id, previous_response_id AS PreviousResponseId, conversation_id AS ConversationId,
               session_id AS SessionId, instructions AS Instructions, response_json AS ResponseJson,
               input_message_count AS InputMessageCount, created_at AS CreatedAt, owner AS Owner
        FROM responses WHERE id = @id AND NOT deleted AND
        """ + Visible + ";";

    internal const string SelectVisibleSeq = "SELECT seq FROM responses WHERE id = @id AND NOT deleted AND " + Visible + ";";

    internal const string SelectOwnMessages =
        "SELECT item_id AS ItemId, body AS Body FROM response_messages WHERE response_seq = @seq ORDER BY ordinal;";

    internal const string SelectConversationHead =
        """
        SELECT r.id FROM conversations c JOIN responses r ON r.seq = c.head_seq
        WHERE c.owner = @owner AND c.conversation_id = @conversationId AND NOT r.deleted;
        """;

    internal const string MoveConversationHeads = "UPDATE conversations SET head_seq = @newHead WHERE head_seq = @seq;";

    internal const string DeleteConversationsWithHead = "DELETE FROM conversations WHERE head_seq = @seq;";

    internal const string DecrementChildCount =
        "UPDATE responses SET child_count = child_count - 1 WHERE seq = @seq RETURNING child_count AS ChildCount, deleted AS Deleted;";

    // Nearest ancestor of @parent (itself included) that is not deleted.
    internal const string SelectNearestVisibleAncestor =
        """
        WITH RECURSIVE up (seq, parent_seq, deleted) AS (
            SELECT seq, parent_seq, deleted FROM responses WHERE seq = @parent
            UNION ALL
            SELECT r.seq, r.parent_seq, r.deleted FROM responses r JOIN up u ON r.seq = u.parent_seq WHERE u.deleted
        )
        SELECT seq FROM up WHERE NOT deleted LIMIT 1;
        """;
}
