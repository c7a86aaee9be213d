namespace ApiServer.Idempotency;

/// <summary>
/// The idempotency store SQL that reads the same in SQLite and PostgreSQL, shared by both stores so a fix reaches both (as
/// ResponseStoreSql does for responses). The rest differs: PostgreSQL's rows carry a lease and a holder instead of SQLite's
/// in-process owner, keep no trigger-kept totals, and take row locks.
/// </summary>
internal static class IdempotencyStoreSql
{
    internal const string DeleteExpired = "DELETE FROM idempotency_records WHERE state = 'finished' AND finished_at <= @cutoff;";

    internal const string SelectBodyExists = "SELECT 1 FROM idempotency_records WHERE id = @id AND state = 'finished';";
}
