using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using ApiServer.Health;
using ApiServer.Runs;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Writes this replica's runs to the shared database, in order, one writer for the replica. A run marks itself changed on every
/// event and state change; the writer then reads its log after the position already written (the log is the only buffer: it
/// is bounded, and keeps every event it accepted), writes at most <see cref="PostgresRunStore.BatchEvents"/> events with the
/// run's state in one transaction, and the commit notifies subscribers. While the database is down the writer retries with
/// backoff; nothing in a log is lost, it is written when the database answers again. A run is forgotten here once its
/// terminal event is written.
/// </summary>
public sealed partial class PostgresRunJournal(PostgresRunStore store, IRunRegistry registry, ReplicaIdentity replica, TimeProvider time,
    ILogger<PostgresRunJournal> logger)
    : BackgroundService, IRunJournal
{
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, Tracked> _runs = new(StringComparer.Ordinal);
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Runs with something not yet written (or not yet known to be written).</summary>
    public int Pending => _runs.Count;

    public void Track(Run run)
    {
        var tracked = new Tracked(run);
        if (!_runs.TryAdd(run.Id, tracked))
            return;
        run.Changed = () =>
        {
            Volatile.Write(ref tracked.Dirty, 1);
            _wake.Writer.TryWrite(true);
        };
        _wake.Writer.TryWrite(true);
    }

    public Task RecordAcceptedAsync(Run run, CancellationToken cancellationToken) =>
        _runs.TryGetValue(run.Id, out var tracked) ? FlushAsync(tracked, cancellationToken) : Task.CompletedTask;

    public async Task<bool> ConfirmHeldAsync(Run run, CancellationToken cancellationToken)
    {
        if (!_runs.TryGetValue(run.Id, out var tracked))
            return true;
        try
        {
            await FlushAsync(tracked, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Not known now (the database is down, or this write failed): the writer keeps trying in the background, and
            // if the run turns out to be taken over then, it is forgotten here as below. The run's own result stands meanwhile.
            LogConfirmFailed(run.Id, PostgresFailure.Describe(ex));
        }
        return !tracked.TakenOver;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = InitialBackoff;
        while (await _wake.Reader.WaitToReadAsync(stoppingToken))
        {
            _wake.Reader.TryRead(out _);
            try
            {
                await FlushDirtyAsync(stoppingToken);
                backoff = InitialBackoff;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogWriteFailed(PostgresFailure.Describe(ex), _runs.Count, backoff.TotalSeconds);
                await Task.Delay(backoff, time, stoppingToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                _wake.Writer.TryWrite(true);
            }
        }
    }

    /// <summary>After every run has ended (the run lifetime service stops first), writes what is left, once.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await FlushDirtyAsync(cancellationToken);
        }
        catch (Exception ex)
        {
            LogShutdownWriteFailed(PostgresFailure.Describe(ex), _runs.Count);
        }
    }

    /// <summary>Writes every run with something new (tests call it to wait for a write instead of waiting on the writer).</summary>
    public async Task FlushDirtyAsync(CancellationToken cancellationToken)
    {
        Exception? failure = null;
        foreach (var tracked in _runs.Values)
        {
            if (Volatile.Read(ref tracked.Dirty) == 0)
                continue;
            try
            {
                await FlushAsync(tracked, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // One run that can't be written must not hold the others back; a database that is down holds them all.
                failure ??= ex;
                if (PostgresFailure.IsUnavailable(ex))
                    break;
            }
        }
        if (failure is not null)
            ExceptionDispatchInfo.Throw(failure);
    }

    private async Task FlushAsync(Tracked tracked, CancellationToken cancellationToken)
    {
        await tracked.Gate.WaitAsync(cancellationToken);
        try
        {
            while (!tracked.Done)
            {
                Volatile.Write(ref tracked.Dirty, 0);
                var capture = tracked.Run.Capture(tracked.Persisted, PostgresRunStore.BatchEvents);
                // A terminal state is written only with its terminal event: a reader that sees it finished has every event.
                var writeState = !capture.State.IsTerminal() || capture.ReachesEnd;
                if (capture.Events.Count == 0 && capture.SnapshotJson == tracked.Written)
                    return;
                var row = Row(tracked.Run, capture, writeState ? capture.SnapshotJson : tracked.Written ?? capture.SnapshotJson);
                if (!await store.WriteAsync(row, writeState, capture.Events, cancellationToken))
                {
                    LogTakenOver(tracked.Run.Id);
                    tracked.TakenOver = true;
                    Forget(tracked);
                    // The database's record is the run now, even if it already ended here (the terminal write is the one
                    // that found out): this replica answers for it from the database like any other, never with its own end.
                    registry.Forget(tracked.Run);
                    EndTakenOver(tracked.Run);
                    return;
                }
                if (capture.Events.Count > 0)
                    tracked.Persisted = capture.Events[^1].Sequence;
                if (writeState)
                    tracked.Written = capture.SnapshotJson;
                if (capture.State.IsTerminal() && capture.ReachesEnd)
                    Forget(tracked);
                else if (capture.Events.Count < PostgresRunStore.BatchEvents)
                    return;
            }
        }
        catch
        {
            Volatile.Write(ref tracked.Dirty, 1);
            throw;
        }
        finally
        {
            tracked.Gate.Release();
        }
    }

    /// <summary>
    /// Another replica has failed this run (our heartbeat had stopped, e.g. while we could not reach the database) and told
    /// every subscriber so. Going on would run its tools and model calls for a client that was told it failed and may already
    /// be retrying elsewhere: end it here the same way (a no-op when it already ended) and cancel what it is doing.
    /// </summary>
    private static void EndTakenOver(Run run)
    {
        run.TryFail(new RunError("Another replica marked this run failed: the replica running it had stopped writing its heartbeat "
            + "(API_SERVER_REPLICA_TIMEOUT_SECONDS). Start it again.", "server_error", "replica_unavailable"), usage: null);
        run.CancelExecution();
    }

    private void Forget(Tracked tracked)
    {
        tracked.Done = true;
        tracked.Run.Changed = null;
        _runs.TryRemove(new KeyValuePair<string, Tracked>(tracked.Run.Id, tracked));
    }

    private RunRow Row(Run run, RunCapture capture, string snapshot) =>
        new(run.Id, run.Spec.Owner, replica.Id, run.Spec.Background is not null, run.SessionId, capture.State.ToWire(),
            snapshot, run.CreatedAt.ToUnixTimeMilliseconds(), time.GetUtcNow().ToUnixTimeMilliseconds(), capture.FinishedAt?.ToUnixTimeMilliseconds());

    /// <summary>One run being written: how far, and whether it changed since. The gate keeps its writes in order.</summary>
    private sealed class Tracked(Run run)
    {
        public Run Run { get; } = run;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public int Dirty = 1;
        public long Persisted;
        public string? Written;
        public bool Done;
        public bool TakenOver;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write run events to the database ({Reason}); {Count} runs wait, retrying in {Seconds} s.")]
    private partial void LogWriteFailed(string reason, int count, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write the last run events at shutdown ({Reason}); {Count} runs are left unfinished in the database.")]
    private partial void LogShutdownWriteFailed(string reason, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not confirm that this replica still holds run {RunId} before storing its result ({Reason}).")]
    private partial void LogConfirmFailed(string runId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId} was marked failed by another replica (this replica's heartbeat had stopped); it is stopped here too.")]
    private partial void LogTakenOver(string runId);
}
