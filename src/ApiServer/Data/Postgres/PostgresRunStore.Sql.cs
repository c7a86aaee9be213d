namespace ApiServer.Data.Postgres;

public sealed partial class PostgresRunStore
{
    internal const string Schema =
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL DEFAULT '',
            replica_id TEXT NOT NULL,
            background BOOLEAN NOT NULL,
            session_id TEXT NULL,
            state TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            finished_at BIGINT NULL
        );
        CREATE INDEX ix_runs_unfinished ON runs (replica_id) WHERE finished_at IS NULL;
        CREATE INDEX ix_runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
        CREATE TABLE run_events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq BIGINT NOT NULL,
            name TEXT NOT NULL,
            frame BYTEA NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        """;

    private const string Columns = "id, owner, replica_id, background, session_id, state, snapshot, created_at, updated_at, finished_at";

    private const string Values = "@Id, @Owner, @ReplicaId, @Background, @SessionId, @State, @SnapshotJson, @CreatedAt, @UpdatedAt, @FinishedAt";

    // Only while unfinished and still this replica's: a run another replica failed stays failed.
    private const string Upsert =
        $"""
        INSERT INTO runs ({Columns}) VALUES ({Values})
        ON CONFLICT (id) DO UPDATE SET state = excluded.state, snapshot = excluded.snapshot, updated_at = excluded.updated_at,
            finished_at = excluded.finished_at
        WHERE runs.finished_at IS NULL AND runs.replica_id = excluded.replica_id;
        """;

    // Events without a new state (the terminal state waits for its terminal event): the row must exist and be unfinished.
    private const string Touch =
        $"""
        INSERT INTO runs ({Columns}) VALUES (@Id, @Owner, @ReplicaId, @Background, @SessionId, 'running', @SnapshotJson, @CreatedAt, @UpdatedAt, NULL)
        ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at
        WHERE runs.finished_at IS NULL AND runs.replica_id = excluded.replica_id;
        """;

    private const string InsertEvents =
        """
        INSERT INTO run_events (run_id, seq, name, frame)
        SELECT @id, e.seq, e.name, e.frame FROM unnest(@seqs, @names, @frames) AS e (seq, name, frame)
        ON CONFLICT (run_id, seq) DO NOTHING;
        """;

    private const string NotifyRun = "SELECT pg_notify(@channel, @id);";

    private const string Select =
        """
        SELECT id AS Id, owner AS Owner, replica_id AS ReplicaId, background AS Background, state AS State, snapshot AS SnapshotJson
        FROM runs WHERE id = @id;
        """;

    private const string SelectFinished = "SELECT finished_at IS NOT NULL FROM runs WHERE id = @id;";

    private const string SelectEvents = "SELECT seq, name, frame FROM run_events WHERE run_id = @id AND seq > @after ORDER BY seq LIMIT @limit;";

    private const string SelectOrphaned =
        $"""
        SELECT id AS Id, replica_id AS ReplicaId, background AS Background, state AS State, snapshot AS SnapshotJson
        FROM runs
        WHERE finished_at IS NULL AND replica_id <> @me
          AND replica_id NOT {PostgresReplicaHeartbeat.BeatLately}
        ORDER BY created_at LIMIT @limit;
        """;

    private const string Claim =
        """
        UPDATE runs SET state = @state, snapshot = @snapshot, updated_at = @now, finished_at = @now
        WHERE id = @id AND finished_at IS NULL AND replica_id = @replica;
        """;

    private const string SelectLastSeq = "SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = @id;";

    private const string FinishBackground =
        "UPDATE background_responses SET status = @status, response_json = @json, finished_at = @now WHERE id = @id AND finished_at IS NULL;";

    private const string DeleteFinished = "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < @before;";
}
