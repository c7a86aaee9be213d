using ApiServer.Data;
using Dapper;

namespace ApiServer.Approvals;

/// <summary>The <c>always</c> approvals in <c>approvals.db</c>.</summary>
public sealed class SqliteToolApprovalStore(SqliteDatabase database) : IToolApprovalStore, IAsyncDisposable
{
    public const string FileName = "approvals.db";

    public static readonly IReadOnlyList<string> Migrations =
    [
        """
        CREATE TABLE tool_approvals (
            owner TEXT NOT NULL DEFAULT '',
            server_label TEXT NOT NULL,
            tool TEXT NOT NULL,
            policy TEXT NOT NULL,
            approved_at INTEGER NOT NULL,
            PRIMARY KEY (owner, server_label, tool)
        );
        """,
    ];

    internal const string Upsert = """
        INSERT INTO tool_approvals (owner, server_label, tool, policy, approved_at) VALUES (@owner, @server, @tool, @policy, @now)
        ON CONFLICT (owner, server_label, tool) DO UPDATE SET policy = excluded.policy, approved_at = excluded.approved_at;
        """;

    internal const string SelectOne = "SELECT policy FROM tool_approvals WHERE owner = @owner AND server_label = @server AND tool = @tool;";

    public bool IsPersistent => database.IsPersistent;

    public Task SaveAsync(string owner, string server, string tool, string policy, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((connection, transaction) => connection.ExecuteAsync(new CommandDefinition(Upsert,
            new { owner, server, tool, policy, now = now.ToUnixTimeSeconds() }, transaction, cancellationToken: cancellationToken)), cancellationToken);

    public async Task<string?> PolicyAsync(string owner, string server, string tool, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.QueryFirstOrDefaultAsync<string>(new CommandDefinition(SelectOne, new { owner, server, tool }, cancellationToken: cancellationToken));
    }

    public ValueTask DisposeAsync() => database.DisposeAsync();
}
