namespace ApiServer.Data.Postgres;

public sealed partial class PostgresRunCommandBus
{
    // A command and its reply travel in a row (a cancel's reply is a whole Response, far past NOTIFY's 8000-byte payload);
    // NOTIFY carries only the row's id, to the holder's channel and back to the asker's.
    internal const string Schema =
        """
        CREATE TABLE run_commands (
            id TEXT PRIMARY KEY,
            replica_id TEXT NOT NULL,
            asker_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            run_id TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            sees_all BOOLEAN NOT NULL,
            approval_id TEXT NULL,
            choice TEXT NULL,
            reason TEXT NULL,
            created_at BIGINT NOT NULL,
            claimed_at BIGINT NULL,
            reply_status INTEGER NULL,
            reply_body TEXT NULL,
            error_message TEXT NULL,
            error_type TEXT NULL,
            error_param TEXT NULL,
            error_code TEXT NULL,
            retry_after INTEGER NULL
        );
        CREATE INDEX ix_run_commands_unclaimed ON run_commands (replica_id) WHERE claimed_at IS NULL;
        CREATE INDEX ix_run_commands_created ON run_commands (created_at);
        """;

    // Only to a holder that is beating: one whose heartbeat timed out would never answer, and its runs are being failed.
    // Answers 1 when sent, 0 when not (pg_notify is volatile, so it is called for the row even though its value is unused).
    private const string Send =
        $"""
        WITH sent AS (
            INSERT INTO run_commands (id, replica_id, asker_id, kind, run_id, owner, sees_all, approval_id, choice, reason, created_at)
            SELECT @id, @replica, @asker, @Kind, @RunId, @Owner, @SeesAll, @ApprovalId, @Choice, @Reason, @now
            WHERE @replica {PostgresReplicaHeartbeat.BeatLately}
            RETURNING id)
        SELECT COUNT(*) FROM (SELECT pg_notify(@channel, @payload) FROM sent) notified;
        """;

    // Claiming makes a command applied once, whether its NOTIFY or the scan after a reconnect reaches it first.
    private const string Claim =
        """
        UPDATE run_commands SET claimed_at = @now
        WHERE id = @id AND replica_id = @replica AND claimed_at IS NULL
        RETURNING kind AS Kind, run_id AS RunId, owner AS Owner, sees_all AS SeesAll, approval_id AS ApprovalId, choice AS Choice,
            reason AS Reason, asker_id AS AskerId;
        """;

    // No row (the asker gave up and withdrew it): nobody waits, so nobody is told.
    private const string Reply =
        """
        WITH replied AS (
            UPDATE run_commands SET reply_status = @Status, reply_body = @Body, error_message = @Message, error_type = @Type,
                error_param = @Param, error_code = @Code, retry_after = @RetryAfterSeconds
            WHERE id = @id RETURNING id)
        SELECT pg_notify(@channel, @payload) FROM replied;
        """;

    // Read and forgotten in one step: a reply is read once, by the one replica waiting for it.
    private const string TakeReply =
        """
        DELETE FROM run_commands WHERE id = @id AND reply_status IS NOT NULL
        RETURNING reply_status AS Status, reply_body AS Body, error_message AS Message, error_type AS Type, error_param AS Param,
            error_code AS Code, retry_after AS RetryAfterSeconds;
        """;

    // The asker gave up: a command not yet taken is never applied; one answered in the meantime is still used.
    private const string Withdraw =
        """
        DELETE FROM run_commands WHERE id = @id
        RETURNING reply_status AS Status, reply_body AS Body, error_message AS Message, error_type AS Type, error_param AS Param,
            error_code AS Code, retry_after AS RetryAfterSeconds;
        """;

    private const string Unclaimed = "SELECT id FROM run_commands WHERE replica_id = @replica AND claimed_at IS NULL;";

    // Rows an asker left behind when it died mid-wait; nobody will read them.
    private const string ForgetOld = "DELETE FROM run_commands WHERE created_at < @before;";

    /// <summary>A command row as the holder reads it.</summary>
    private sealed class CommandRow
    {
        public string Kind { get; set; } = "";
        public string RunId { get; set; } = "";
        public string Owner { get; set; } = "";
        public bool SeesAll { get; set; }
        public string? ApprovalId { get; set; }
        public string? Choice { get; set; }
        public string? Reason { get; set; }
        public string AskerId { get; set; } = "";
    }

    /// <summary>A reply row as the asker reads it (null status: withdrawn before anyone answered).</summary>
    private sealed class ReplyRow
    {
        public int? Status { get; set; }
        public string? Body { get; set; }
        public string? Message { get; set; }
        public string? Type { get; set; }
        public string? Param { get; set; }
        public string? Code { get; set; }
        public int? RetryAfterSeconds { get; set; }
    }
}
