using ApiServer.Responses.Store;
using static ApiServer.Responses.Store.ResponseStoreSql;

namespace ApiServer.Data.Postgres;

public sealed partial class PostgresResponseStore
{
    /// <summary>
    /// The SQLite schema's shape (see SqliteResponseStore.Sql.cs for why each column exists). seq is an identity column, so a
    /// seq is never reused: the chain cache, keyed by seq, can't confuse a purged response with a newer one on any replica.
    /// The visible count is kept by <see cref="CountSchema"/>.
    /// </summary>
    internal const string Schema =
        """
        CREATE TABLE responses (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            parent_seq BIGINT NULL,
            previous_response_id TEXT NULL,
            depth BIGINT NOT NULL,
            conversation_id TEXT NULL,
            session_id TEXT NULL,
            instructions TEXT NULL,
            response_json TEXT NOT NULL,
            input_message_count BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            last_accessed_at BIGINT NOT NULL,
            child_count BIGINT NOT NULL DEFAULT 0,
            deleted BOOLEAN NOT NULL DEFAULT FALSE
        );
        CREATE INDEX ix_responses_evictable ON responses (last_accessed_at, seq) WHERE child_count = 0 AND NOT deleted;
        CREATE INDEX ix_responses_visible ON responses (seq) WHERE NOT deleted;
        CREATE TABLE response_messages (
            response_seq BIGINT NOT NULL,
            ordinal BIGINT NOT NULL,
            item_id TEXT NOT NULL,
            is_input BOOLEAN NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (response_seq, ordinal)
        );
        CREATE TABLE conversations (
            conversation_id TEXT NOT NULL PRIMARY KEY,
            head_seq BIGINT NOT NULL
        );
        CREATE INDEX ix_conversations_head ON conversations (head_seq);
        """;

    /// <summary>
    /// Items with the ids they were given once (the SQLite store's v3, see SqliteResponseStore.Sql.cs for why). items_stored
    /// false marks rows written before this step: their items are still derived from their messages when listed.
    /// </summary>
    internal const string ItemsSchema =
        """
        CREATE TABLE response_items (
            response_seq BIGINT NOT NULL,
            ordinal BIGINT NOT NULL,
            item_id TEXT NOT NULL,
            is_input BOOLEAN NOT NULL,
            body TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (response_seq, ordinal)
        );
        CREATE INDEX ix_response_items_item_id ON response_items (item_id, response_seq);
        ALTER TABLE responses ADD COLUMN items_stored BOOLEAN NOT NULL DEFAULT FALSE;
        """;

    /// <summary>
    /// The name of the key that stored each response (Access/Owner.cs), as the SQLite store's v4; rows from before keys owned
    /// objects belong to the anonymous owner ''.
    /// </summary>
    internal const string OwnerSchema = "ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT '';";

    /// <summary>Conversation names per owner (the SQLite store's v5, see SqliteResponseStore.Sql.cs for why).</summary>
    internal const string ConversationOwnerSchema =
        """
        ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        UPDATE conversations c SET owner = r.owner FROM responses r WHERE r.seq = c.head_seq;
        ALTER TABLE conversations DROP CONSTRAINT conversations_pkey;
        ALTER TABLE conversations ADD PRIMARY KEY (owner, conversation_id);
        """;

    /// <summary>
    /// The visible count kept by a trigger, so the capacity check on every put reads a few rows instead of counting the table
    /// (what SQLite's response_stats row does). One counter row would serialize every replica's puts on its lock, so the count
    /// is split over 32 rows and a transaction adds to the row of its own connection (pg_backend_pid()):
    /// concurrent writers rarely share a row, and one transaction never locks two. The table is locked while the count starts,
    /// so a write from a replica still on the old version can't fall between the count and the trigger.
    /// </summary>
    internal const string CountSchema =
        """
        LOCK TABLE responses IN SHARE ROW EXCLUSIVE MODE;
        CREATE TABLE response_counts (shard INTEGER PRIMARY KEY, visible BIGINT NOT NULL);
        INSERT INTO response_counts (shard, visible) SELECT s, 0 FROM generate_series(0, 31) AS s;
        UPDATE response_counts SET visible = (SELECT COUNT(*) FROM responses WHERE NOT deleted) WHERE shard = 0;
        CREATE FUNCTION responses_count_visible() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE delta BIGINT := 0;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NOT NEW.deleted THEN delta := 1; END IF;
            ELSIF TG_OP = 'DELETE' THEN
                IF NOT OLD.deleted THEN delta := -1; END IF;
            ELSIF OLD.deleted <> NEW.deleted THEN
                delta := CASE WHEN NEW.deleted THEN -1 ELSE 1 END;
            END IF;
            IF delta <> 0 THEN
                UPDATE response_counts SET visible = visible + delta WHERE shard = pg_backend_pid() % 32;
            END IF;
            RETURN NULL;
        END;
        $$;
        CREATE TRIGGER tr_responses_count_visible AFTER INSERT OR DELETE OR UPDATE OF deleted ON responses
            FOR EACH ROW EXECUTE FUNCTION responses_count_visible();
        """;

    // FOR UPDATE: a delete or eviction of the parent waits for this put (and then sees its child), or runs first (and the put
    // finds no parent). Either way no child is stored under a purged parent.
    private const string SelectParent = "SELECT seq AS Seq, depth AS Depth FROM responses WHERE id = @id FOR UPDATE;";

    private const string InsertMessages =
        """
        INSERT INTO response_messages (response_seq, ordinal, item_id, is_input, body)
        SELECT @seq, m.ordinal - 1, m.item_id, m.ordinal <= @inputCount, m.body
        FROM unnest(@itemIds, @bodies) WITH ORDINALITY AS m (item_id, body, ordinal);
        """;

    private const string InsertItems =
        """
        INSERT INTO response_items (response_seq, ordinal, item_id, is_input, body, owner)
        SELECT @seq, i.ordinal - 1, i.item_id, i.ordinal <= @inputCount, i.body, @owner
        FROM unnest(@itemIds, @bodies) WITH ORDINALITY AS i (item_id, body, ordinal);
        """;

    // Last-access times recorded by this replica's reads, written in one statement that also reads the visible count (the put's
    // capacity check, one round trip); a newer time written by another replica wins.
    private const string TouchManyAndCountVisible =
        """
        WITH touched AS (
            UPDATE responses r SET last_accessed_at = GREATEST(r.last_accessed_at, v.at)
            FROM unnest(@seqs::BIGINT[], @ats::BIGINT[]) AS v (seq, at) WHERE r.seq = v.seq
        )
        SELECT COALESCE(SUM(visible), 0)::BIGINT FROM response_counts;
        """;

    private const string SelectChainItemIds = ResponseStoreSql.SelectChainItemIdsWhereItemId + "= ANY(@itemIds);";

    // The trigger-kept count (CountSchema); CountVisibleRows is what it must always equal.
    private const string CountVisible = "SELECT COALESCE(SUM(visible), 0)::BIGINT FROM response_counts;";

    internal const string CountVisibleRows = "SELECT COUNT(*) FROM responses WHERE NOT deleted;";

    // SKIP LOCKED: two replicas evicting at once take different victims instead of waiting on (or purging) the same one.
    private const string SelectLeastRecentLeaf =
        """
        SELECT seq FROM responses
        WHERE child_count = 0 AND NOT deleted AND seq <> @keep
        ORDER BY last_accessed_at, seq LIMIT 1
        FOR UPDATE SKIP LOCKED;
        """;

    private const string SelectForDelete =
        "SELECT seq AS Seq, parent_seq AS ParentSeq, child_count AS ChildCount FROM responses WHERE id = @id AND NOT deleted AND " + Visible + " FOR UPDATE;";

    private const string Hide = "UPDATE responses SET deleted = TRUE WHERE seq = @seq;";

    private const string DeleteResponseRow = "DELETE FROM responses WHERE seq = @seq RETURNING parent_seq;";

    private const string SelectPayloadBytes =
        """
        SELECT (SELECT COALESCE(SUM(octet_length(body)), 0) FROM response_messages)
             + (SELECT COALESCE(SUM(octet_length(body)), 0) FROM response_items)
             + (SELECT COALESCE(SUM(octet_length(response_json)), 0) FROM responses);
        """;
}
