namespace ApiServer.Responses.Background;

/// <summary>A background response as recorded outside memory: whose it is, where it got to, and its Response JSON then.</summary>
public sealed record BackgroundRecord(string Id, string Owner, string Status, string ResponseJson);

/// <summary>
/// What survives a restart about background responses. A row is written before the response is accepted and rewritten when
/// it ends, so a row still <c>queued</c> or <c>in_progress</c> at startup names a turn the previous process never finished.
/// </summary>
public interface IBackgroundResponseStore
{
    /// <summary>Records an accepted background response (its status is <c>queued</c>).</summary>
    Task InsertAsync(BackgroundRecord record, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Records the ending: final status and Response. Also trims finished rows beyond the store's capacity.</summary>
    Task FinishAsync(string id, string status, string responseJson, DateTimeOffset now, CancellationToken cancellationToken);

    Task<BackgroundRecord?> GetAsync(string id, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// True when several replicas share the store: then <see cref="UnfinishedAsync"/> is asked by the periodic sweep, which
    /// waits for a steady heartbeat, not at startup (<see cref="BackgroundRecovery"/>).
    /// </summary>
    bool SharedByReplicas => false;

    /// <summary>Rows left <c>queued</c> or <c>in_progress</c> by an earlier process: they will never finish.</summary>
    Task<IReadOnlyList<BackgroundRecord>> UnfinishedAsync(CancellationToken cancellationToken);
}
