namespace ApiServer.Approvals;

/// <summary>
/// The <c>always</c> approvals: per owner and MCP tool, the server's approval config (as text) the approval was given under.
/// ToolApprovalMemory decides what a stored policy means; this only keeps it.
/// </summary>
public interface IToolApprovalStore
{
    /// <summary>Records (or replaces) the owner's approval of the tool under <paramref name="policy"/>.</summary>
    Task SaveAsync(string owner, string server, string tool, string policy, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The policy the owner approved the tool under, or null when it never did.</summary>
    Task<string?> PolicyAsync(string owner, string server, string tool, CancellationToken cancellationToken);
}
