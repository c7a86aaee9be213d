namespace ApiServer.Data.Postgres;

public sealed partial class PostgresIdempotencyStore
{
    /// <summary>
    /// The SQLite table's shape (see SqliteIdempotencyStore.Sql.cs), plus a lease: a 'running' row holds its key on every
    /// replica until lease_until, which the holding process keeps pushing forward while the request runs. A row whose lease
    /// ran out belongs to a process that died: it is deleted like an expired record, so the retry runs (never replays).
    /// holder is the claiming process's id (the SQLite table calls it owner).
    /// </summary>
    internal const string Schema =
        """
        CREATE TABLE idempotency_records (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            principal TEXT NOT NULL,
            route TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL,
            holder TEXT NOT NULL,
            lease_until BIGINT NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            headers TEXT NOT NULL DEFAULT '[]',
            has_content_length BOOLEAN NOT NULL DEFAULT FALSE,
            body BYTEA NOT NULL DEFAULT ''::bytea,
            bytes BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            finished_at BIGINT NULL,
            UNIQUE (principal, route, key)
        );
        CREATE INDEX ix_idempotency_finished ON idempotency_records (finished_at, id) WHERE state = 'finished';
        CREATE INDEX ix_idempotency_running ON idempotency_records (holder) WHERE state = 'running';
        """;

    // Frees the key when its record expired, its holder's lease ran out, or this process holds it in the database but not in
    // memory (its own finish failed): this process holds the key in memory right now, so such a row serves no live request.
    private const string DeleteStale = """
        DELETE FROM idempotency_records
        WHERE principal = @principal AND route = @route AND key = @key
          AND ((state = 'running' AND (lease_until < @now OR holder = @holder)) OR (state = 'finished' AND finished_at <= @cutoff));
        """;

    private const string InsertRunning = """
        INSERT INTO idempotency_records (principal, route, key, fingerprint, state, holder, lease_until, created_at)
        VALUES (@principal, @route, @key, @fingerprint, 'running', @holder, @leaseUntil, @now)
        ON CONFLICT (principal, route, key) DO NOTHING
        RETURNING id;
        """;

    private const string SelectHolding = """
        SELECT id AS Id, fingerprint AS Fingerprint, state AS State, status AS Status, headers AS Headers,
               has_content_length AS HasContentLength, bytes AS Bytes
        FROM idempotency_records WHERE principal = @principal AND route = @route AND key = @key;
        """;

    private const string MarkFinished = """
        UPDATE idempotency_records
        SET state = 'finished', status = @status, headers = @headers, has_content_length = @hasContentLength,
            body = @body, bytes = @bytes, finished_at = @now
        WHERE id = @id AND holder = @holder AND state = 'running';
        """;

    private const string DeleteRunning = "DELETE FROM idempotency_records WHERE id = @id AND holder = @holder AND state = 'running';";

    // Only the claims still running in this process: a row whose finish failed to be written lapses like a dead holder's.
    private const string RenewLeases = "UPDATE idempotency_records SET lease_until = @leaseUntil WHERE id = ANY(@ids) AND holder = @holder AND state = 'running';";

    private const string DeleteAbandoned = "DELETE FROM idempotency_records WHERE state = 'running' AND lease_until < @now;";

    private const string SelectTotals = "SELECT COUNT(*) AS Entries, COALESCE(SUM(bytes), 0)::BIGINT AS Bytes FROM idempotency_records WHERE state = 'finished';";

    private const string DeleteOldest = """
        DELETE FROM idempotency_records
        WHERE id = (SELECT id FROM idempotency_records WHERE state = 'finished' ORDER BY finished_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING bytes;
        """;

    // The stored length is part of the key: an id is never reused, and a record replayed is never rewritten, so a read that
    // finds no row means the record was evicted or expired mid-replay.
    private const string SelectBodyPart =
        "SELECT substring(body FROM @from FOR @count) FROM idempotency_records WHERE id = @id AND state = 'finished' AND bytes = @length;";

    private const string CountFinished = "SELECT COUNT(*) FROM idempotency_records WHERE state = 'finished';";
}
