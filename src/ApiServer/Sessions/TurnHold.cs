namespace ApiServer.Sessions;

/// <summary>
/// A held turn lock (<see cref="ITurnLock"/>) that its request may hand over to work outliving it: a background response
/// holds its conversation's lock until its run has ended and stored its turn, not only while its request is answered.
/// Disposing releases the lock unless it was handed over; the one who took it over releases it.
/// </summary>
public sealed class TurnHold(IAsyncDisposable held) : IAsyncDisposable
{
    private IAsyncDisposable? _held = held;

    public static async Task<TurnHold?> AcquireAsync(ITurnLock locks, string? key, CancellationToken cancellationToken) =>
        key is null ? null : new TurnHold(await locks.AcquireAsync(key, cancellationToken));

    /// <summary>The lock itself, now the caller's to release; disposing this hold no longer releases it.</summary>
    public TurnHold HandOver() => new(Interlocked.Exchange(ref _held, null) ?? throw new InvalidOperationException("The turn lock was already handed over."));

    /// <summary>Releases the lock once, whoever calls first.</summary>
    public ValueTask DisposeAsync() => Interlocked.Exchange(ref _held, null)?.DisposeAsync() ?? ValueTask.CompletedTask;
}
