namespace ApiServer.Idempotency;

public sealed partial class SqliteIdempotencyStore
{
    /// <summary>Schema versions, applied in order by <see cref="Data.SqliteDatabase"/>. Append only; never edit a shipped entry.</summary>
    internal static readonly IReadOnlyList<string> Migrations =
    [
        // v1. A row is 'running' from the claim until its request ends, then 'finished' (kept for replay) or deleted. The id is
        // never reused (AUTOINCREMENT), so a replay reading a body by id can't read a newer record's. idempotency_totals counts
        // the finished rows and their bytes, kept by triggers, so the bounds are checked without scanning.
        """
        CREATE TABLE idempotency_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            principal TEXT NOT NULL,
            route TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL,
            owner TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            headers TEXT NOT NULL DEFAULT '[]',
            has_content_length INTEGER NOT NULL DEFAULT 0,
            body BLOB NOT NULL DEFAULT x'',
            bytes INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            finished_at INTEGER NULL,
            UNIQUE (principal, route, key)
        );
        CREATE INDEX ix_idempotency_finished ON idempotency_records (finished_at, id) WHERE state = 'finished';
        CREATE TABLE idempotency_totals (entries INTEGER NOT NULL, bytes INTEGER NOT NULL);
        INSERT INTO idempotency_totals (entries, bytes) VALUES (0, 0);
        CREATE TRIGGER idempotency_record_finished AFTER UPDATE OF state ON idempotency_records
        WHEN new.state = 'finished' AND old.state <> 'finished'
        BEGIN
            UPDATE idempotency_totals SET entries = entries + 1, bytes = bytes + new.bytes;
        END;
        CREATE TRIGGER idempotency_record_deleted AFTER DELETE ON idempotency_records
        WHEN old.state = 'finished'
        BEGIN
            UPDATE idempotency_totals SET entries = entries - 1, bytes = bytes - old.bytes;
        END;
        """,
    ];

    // A running row this process does not hold in memory belongs to no live request (SQLite has one server process per data
    // dir): a crash or a failed write left it. It is deleted like an expired record, so the retry runs.
    private const string DeleteStale = """
        DELETE FROM idempotency_records
        WHERE principal = @principal AND route = @route AND key = @key AND (state = 'running' OR finished_at <= @cutoff);
        """;

    private const string InsertRunning = """
        INSERT INTO idempotency_records (principal, route, key, fingerprint, state, owner, created_at)
        VALUES (@principal, @route, @key, @fingerprint, 'running', @owner, @now)
        ON CONFLICT (principal, route, key) DO NOTHING
        RETURNING id;
        """;

    private const string SelectFinished = """
        SELECT id, fingerprint, status, headers, has_content_length, bytes FROM idempotency_records
        WHERE principal = @principal AND route = @route AND key = @key AND state = 'finished';
        """;

    private const string MarkFinished = """
        UPDATE idempotency_records
        SET state = 'finished', status = @status, headers = @headers, has_content_length = @hasContentLength,
            body = zeroblob(@bytes), bytes = @bytes, finished_at = @now
        WHERE id = @id AND owner = @owner AND state = 'running';
        """;

    private const string DeleteRunning = "DELETE FROM idempotency_records WHERE id = @id AND owner = @owner AND state = 'running';";

    private const string DeleteAllRunning = "DELETE FROM idempotency_records WHERE state = 'running';";

    private const string SelectTotals = "SELECT entries, bytes FROM idempotency_totals;";

    private const string DeleteOldest = """
        DELETE FROM idempotency_records
        WHERE id = (SELECT id FROM idempotency_records WHERE state = 'finished' ORDER BY finished_at, id LIMIT 1)
        RETURNING bytes;
        """;

    private const string CountFinished = "SELECT entries FROM idempotency_totals;";
}
