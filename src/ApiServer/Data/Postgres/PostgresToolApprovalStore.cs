using ApiServer.Approvals;
using Dapper;
using static ApiServer.Approvals.SqliteToolApprovalStore;

namespace ApiServer.Data.Postgres;

/// <summary>The <c>always</c> approvals on PostgreSQL, shared by every replica (the SQLite store's table and statements).</summary>
public sealed class PostgresToolApprovalStore(PostgresDatabase database) : IToolApprovalStore
{
    internal const string Schema =
        """
        CREATE TABLE tool_approvals (
            owner TEXT NOT NULL DEFAULT '',
            server_label TEXT NOT NULL,
            tool TEXT NOT NULL,
            policy TEXT NOT NULL,
            approved_at BIGINT NOT NULL,
            PRIMARY KEY (owner, server_label, tool)
        );
        """;

    public async Task SaveAsync(string owner, string server, string tool, string policy, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Upsert, new { owner, server, tool, policy, now = now.ToUnixTimeSeconds() },
            cancellationToken: cancellationToken));
    }

    public async Task<string?> PolicyAsync(string owner, string server, string tool, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.QueryFirstOrDefaultAsync<string>(new CommandDefinition(SelectOne, new { owner, server, tool }, cancellationToken: cancellationToken));
    }
}
