using ApiServer.Responses.Background;
using Dapper;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Background response records on PostgreSQL (see SqliteBackgroundResponseStore), shared by every replica. A record carries the
/// replica running it, so a replica's startup marks failed only the records of replicas that are gone (neither this one nor one
/// whose heartbeat is recent, see PostgresReplicaHeartbeat), never a turn another live replica is running.
/// </summary>
public sealed class PostgresBackgroundResponseStore(PostgresDatabase database, int capacity, string replicaId, TimeSpan? replicaTimeout = null) : IBackgroundResponseStore
{
    internal const string Schema =
        """
        CREATE TABLE background_responses (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            response_json TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            finished_at BIGINT NULL,
            holder TEXT NULL
        );
        CREATE INDEX ix_background_unfinished ON background_responses (created_at) WHERE finished_at IS NULL;
        CREATE INDEX ix_background_finished ON background_responses (finished_at) WHERE finished_at IS NOT NULL;
        """;

    private const string Insert =
        """
        INSERT INTO background_responses (id, owner, status, response_json, created_at, holder)
        VALUES (@Id, @Owner, @Status, @ResponseJson, @now, @holder);
        """;

    private const string Finish =
        "UPDATE background_responses SET status = @status, response_json = @json, finished_at = @now WHERE id = @id AND finished_at IS NULL;";

    // Finished rows beyond the capacity go oldest first; unfinished rows are never trimmed.
    private const string Trim =
        """
        DELETE FROM background_responses WHERE id IN (
            SELECT id FROM background_responses WHERE finished_at IS NOT NULL ORDER BY finished_at DESC OFFSET @capacity);
        """;

    private const string Select =
        "SELECT id AS Id, owner AS Owner, status AS Status, response_json AS ResponseJson FROM background_responses WHERE id = @id;";

    private const string SelectOrphaned =
        $"""
        SELECT id AS Id, owner AS Owner, status AS Status, response_json AS ResponseJson
        FROM background_responses
        WHERE finished_at IS NULL AND holder IS DISTINCT FROM @holder
          AND (holder IS NULL OR holder NOT {PostgresReplicaHeartbeat.BeatLately})
        ORDER BY created_at;
        """;

    private const string Delete = "DELETE FROM background_responses WHERE id = @id;";

    public async Task InsertAsync(BackgroundRecord record, DateTimeOffset now, CancellationToken cancellationToken) =>
        await ExecuteAsync(Insert, new { record.Id, record.Owner, record.Status, record.ResponseJson, now = now.ToUnixTimeMilliseconds(), holder = replicaId },
            cancellationToken);

    public Task FinishAsync(string id, string status, string responseJson, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(Finish, new { id, status, json = responseJson, now = now.ToUnixTimeMilliseconds() }, t,
                cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(Trim, new { capacity = (long)capacity }, t, cancellationToken: cancellationToken));
        }, cancellationToken);

    public async Task<BackgroundRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<BackgroundRecord>(new CommandDefinition(Select, new { id }, cancellationToken: cancellationToken));
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        await ExecuteAsync(Delete, new { id }, cancellationToken) == 1;

    public bool SharedByReplicas => true;

    /// <summary>Unfinished records whose replica is gone; another live replica's running turns are left alone.</summary>
    public async Task<IReadOnlyList<BackgroundRecord>> UnfinishedAsync(CancellationToken cancellationToken)
    {
        var timeoutMs = (long)(replicaTimeout ?? PostgresReplicaHeartbeat.DefaultTimeout).TotalMilliseconds;
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<BackgroundRecord>(new CommandDefinition(SelectOrphaned, new { holder = replicaId, timeoutMs },
            cancellationToken: cancellationToken))];
    }

    private async Task<int> ExecuteAsync(string sql, object parameters, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(sql, parameters, cancellationToken: cancellationToken));
    }
}
