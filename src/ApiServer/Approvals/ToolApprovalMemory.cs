using System.Collections.Concurrent;
using ApiServer.Mcp;

namespace ApiServer.Approvals;

/// <summary>
/// Approvals that outlive one call: <c>session</c> ones (in memory, for the rest of that session's runs) and <c>always</c>
/// ones (in an <see cref="IToolApprovalStore"/>: approvals.db, or PostgreSQL). An <c>always</c> approval records the server's
/// <c>require_approval</c> config as it was; when the operator changes that config the approval no longer applies, which is how
/// it is revoked (see README, Approvals).
/// </summary>
public sealed class ToolApprovalMemory(IToolApprovalStore store, McpHub hub)
{
    /// <summary>Most remembered session approvals; past it the oldest half is forgotten (they are a convenience, not a right).</summary>
    public const int MaxSessionApprovals = 10_000;

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
        await store.SaveAsync(owner, found.Server, found.Tool, found.Policy, now, cancellationToken);
    }

    public async Task<bool> IsApprovedAlwaysAsync(string owner, string tool, CancellationToken cancellationToken)
    {
        if (Find(tool) is not { } found)
            return false;
        var policy = await store.PolicyAsync(owner, found.Server, found.Tool, cancellationToken);
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
