namespace ApiServer.Sessions;

/// <summary>
/// Serializes the turns of one session (<see cref="SessionIds.Scoped"/>) or conversation (<c>ConversationTurns.LockKey</c>):
/// one holder per key at a time, waiters served in order, a wait ended by its cancellation token. Disposing the hold
/// releases it. One process: <see cref="KeyedLock"/>; several replicas on PostgreSQL: <c>PostgresTurnLock</c>.
/// </summary>
public interface ITurnLock
{
    Task<IAsyncDisposable> AcquireAsync(string key, CancellationToken cancellationToken);
}
