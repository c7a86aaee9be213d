namespace ApiServer.Runs;

/// <summary>A run (or a background response, <paramref name="Background"/>) as its replica recorded it in the shared database.</summary>
/// <param name="State">The wire state: queued, running, waiting_for_approval, completed, failed or cancelled.</param>
/// <param name="SnapshotJson">What GET answers for it now: the run status object, or the background response's Response.</param>
public sealed record RunRecord(string Id, string Owner, string ReplicaId, bool Background, string State, string SnapshotJson);

/// <summary>
/// The runs of every replica, as recorded in the shared database. Consulted when a run id is not in this replica's registry.
/// Without a shared database it knows nothing: every run then lives in this process.
/// </summary>
public interface IRunDirectory
{
    Task<RunRecord?> FindAsync(string id, CancellationToken cancellationToken);
}

/// <summary>SQLite: one process, so a run this replica does not hold does not exist.</summary>
public sealed class NoRunDirectory : IRunDirectory
{
    public Task<RunRecord?> FindAsync(string id, CancellationToken cancellationToken) => Task.FromResult<RunRecord?>(null);
}
