namespace ApiServer.Runs;

/// <summary>
/// Records this replica's runs where every replica can read them (PostgreSQL): the run as accepted, every state change and
/// every event, so <see cref="IRunDirectory"/> and <see cref="IRunEventArchive"/> on another replica answer for it.
/// </summary>
public interface IRunJournal
{
    /// <summary>Starts recording a run that was just registered: its row, state changes and events follow in the background.</summary>
    void Track(Run run);

    /// <summary>Writes the run's row now, so another replica finds its id as soon as the client has it.</summary>
    Task RecordAcceptedAsync(Run run, CancellationToken cancellationToken);

    /// <summary>
    /// Writes what the run has logged so far and answers whether this replica still holds it: false when another replica has
    /// ended it meanwhile (the run has then been ended here too). A run checks before it stores its Response, so a run that
    /// the database records as failed leaves no Response behind. True when the database can't be reached to tell.
    /// </summary>
    Task<bool> ConfirmHeldAsync(Run run, CancellationToken cancellationToken);
}

/// <summary>SQLite: one process holds every run, so nothing is recorded outside it.</summary>
public sealed class NoRunJournal : IRunJournal
{
    public void Track(Run run)
    {
    }

    public Task RecordAcceptedAsync(Run run, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<bool> ConfirmHeldAsync(Run run, CancellationToken cancellationToken) => Task.FromResult(true);
}

/// <summary>
/// The recorded events of runs held by other replicas. Only registered with a shared database; a run another replica holds is
/// known only through <see cref="IRunDirectory"/>, which never finds one without it.
/// </summary>
public interface IRunEventArchive
{
    /// <summary>
    /// Completes when the run may have new events (or the feed of changes was interrupted and everything should be read again).
    /// Take it before reading, so a change between the read and the wait is not missed.
    /// </summary>
    Task WhenChanged(string runId);

    /// <summary>This waiter no longer waits on <paramref name="changed"/> (what <see cref="WhenChanged"/> gave it).</summary>
    void StopWaiting(string runId, Task changed);

    /// <summary>
    /// The recorded events after sequence <paramref name="after"/> in order, and whether the run has ended with nothing after
    /// them (a run whose record is gone has ended too).
    /// </summary>
    Task<RunEventBatch> ReadAfterAsync(string runId, long after, CancellationToken cancellationToken);
}
