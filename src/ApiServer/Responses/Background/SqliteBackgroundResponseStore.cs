using ApiServer.Data;
using Dapper;

namespace ApiServer.Responses.Background;

/// <summary>Background responses in <c>background.db</c>. Times are Unix milliseconds.</summary>
public sealed class SqliteBackgroundResponseStore(SqliteDatabase database, int capacity) : IBackgroundResponseStore, IAsyncDisposable
{
    public const string FileName = "background.db";

    public bool IsPersistent => database.IsPersistent;

    public static readonly IReadOnlyList<string> Migrations =
    [
        """
        CREATE TABLE background_responses (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            response_json TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            finished_at INTEGER NULL
        );
        CREATE INDEX ix_background_unfinished ON background_responses (created_at) WHERE finished_at IS NULL;
        CREATE INDEX ix_background_finished ON background_responses (finished_at) WHERE finished_at IS NOT NULL;
        """,
    ];

    private const string Insert =
        """
        INSERT INTO background_responses (id, owner, status, response_json, created_at)
        VALUES (@Id, @Owner, @Status, @ResponseJson, @now);
        """;

    private const string Finish =
        "UPDATE background_responses SET status = @status, response_json = @json, finished_at = @now WHERE id = @id;";

    // Finished rows beyond the capacity go oldest first; unfinished rows are never trimmed.
    private const string Trim =
        """
        DELETE FROM background_responses WHERE id IN (
            SELECT id FROM background_responses WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT -1 OFFSET @capacity);
        """;

    private const string Select =
        "SELECT id AS Id, owner AS Owner, status AS Status, response_json AS ResponseJson FROM background_responses WHERE id = @id;";

    private const string SelectUnfinished =
        """
        SELECT id AS Id, owner AS Owner, status AS Status, response_json AS ResponseJson
        FROM background_responses WHERE finished_at IS NULL ORDER BY created_at;
        """;

    private const string Delete = "DELETE FROM background_responses WHERE id = @id;";

    public Task InsertAsync(BackgroundRecord record, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(Insert,
            new { record.Id, record.Owner, record.Status, record.ResponseJson, now = now.ToUnixTimeMilliseconds() }, t,
            cancellationToken: cancellationToken)), cancellationToken);

    public Task FinishAsync(string id, string status, string responseJson, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(Finish, new { id, status, json = responseJson, now = now.ToUnixTimeMilliseconds() }, t,
                cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(Trim, new { capacity }, t, cancellationToken: cancellationToken));
        }, cancellationToken);

    public async Task<BackgroundRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<BackgroundRecord>(new CommandDefinition(Select, new { id }, cancellationToken: cancellationToken));
    }

    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
            await c.ExecuteAsync(new CommandDefinition(Delete, new { id }, t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public async Task<IReadOnlyList<BackgroundRecord>> UnfinishedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<BackgroundRecord>(new CommandDefinition(SelectUnfinished, cancellationToken: cancellationToken))];
    }

    public ValueTask DisposeAsync() => database.DisposeAsync();
}
