using System.Collections.Concurrent;
using ApiServer.Data;
using ApiServer.Mcp;
using Dapper;

namespace ApiServer.Approvals;

/// <summary>
/// Approvals that outlive one call: <c>session</c> ones (in memory, for the rest of that session's runs) and <c>always</c>
/// ones (in approvals.db). An <c>always</c> approval records the server's <c>require_approval</c> config as it was; when the
/// operator changes that config the approval no longer applies, which is how it is revoked (see README, Approvals).
/// </summary>
public sealed class ToolApprovalMemory(SqliteDatabase database, McpHub hub)
{
    /// <summary>Most remembered session approvals; past it the oldest half is forgotten (they are a convenience, not a right).</summary>
    public const int MaxSessionApprovals = 10_000;

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

    private const string Upsert = """
        INSERT INTO tool_approvals (owner, server_label, tool, policy, approved_at) VALUES (@owner, @server, @tool, @policy, @now)
        ON CONFLICT (owner, server_label, tool) DO UPDATE SET policy = excluded.policy, approved_at = excluded.approved_at;
        """;

    private const string SelectOne = "SELECT policy FROM tool_approvals WHERE owner = @owner AND server_label = @server AND tool = @tool;";

    private readonly ConcurrentDictionary<(string Owner, string Session, string Tool), long> _session = new();
    private long _order;

    public void ApproveForSession(string owner, string sessionId, string tool)
    {
        if (_session.Count >= MaxSessionApprovals)
        {
            foreach (var old in _session.OrderBy(e => e.Value).Take(MaxSessionApprovals / 2).ToList())
                _session.TryRemove(old.Key, out _);
        }
        _session[(owner, sessionId, tool)] = Interlocked.Increment(ref _order);
    }

    public bool IsApprovedForSession(string owner, string? sessionId, string tool) =>
        sessionId is not null && _session.ContainsKey((owner, sessionId, tool));

    public async Task ApproveAlwaysAsync(string owner, string tool, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (Find(tool) is not { } found)
            return;
        await database.WriteAsync(async (connection, transaction) => await connection.ExecuteAsync(new CommandDefinition(Upsert,
            new { owner, server = found.Server, tool = found.Tool, policy = found.Policy, now = now.ToUnixTimeSeconds() }, transaction,
            cancellationToken: cancellationToken)), cancellationToken);
    }

    public async Task<bool> IsApprovedAlwaysAsync(string owner, string tool, CancellationToken cancellationToken)
    {
        if (Find(tool) is not { } found)
            return false;
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var policy = await connection.QueryFirstOrDefaultAsync<string>(new CommandDefinition(SelectOne,
            new { owner, server = found.Server, tool = found.Tool }, cancellationToken: cancellationToken));
        return policy == found.Policy;
    }

    /// <summary>The MCP server and own name of a tool, and its server's approval config as text.</summary>
    private (string Server, string Tool, string Policy)? Find(string name) =>
        hub.Tools.FirstOrDefault(t => t.Definition.Name == name) is { } tool
            ? (tool.ServerLabel, tool.ToolName, Fingerprint(tool.ServerConfig.Approval))
            : null;

    private static string Fingerprint(McpApprovalPolicy policy) =>
        $"default={policy.Default};always={string.Join(',', policy.Always.Order(StringComparer.Ordinal))};never={string.Join(',', policy.Never.Order(StringComparer.Ordinal))}";
}
