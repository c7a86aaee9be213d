namespace ApiServer.Runs;

public enum AdmissionResult
{
    /// <summary>The run holds a concurrency slot and starts now.</summary>
    Started,

    /// <summary>The run waits behind its session's earlier runs.</summary>
    Queued,

    /// <summary>Every concurrency slot is taken (429).</summary>
    Busy,

    /// <summary>The queue of waiting runs is full (429).</summary>
    QueueFull,
}

/// <summary>
/// Decides when runs execute. Two rules:
/// <list type="bullet">
/// <item>At most <c>maxConcurrent</c> runs hold a slot (execute) at once. A run with no session work ahead of it takes a
/// free slot or is refused with 429; it never waits for one.</item>
/// <item>Runs of one session execute one at a time, in the order they were accepted. A run whose session already has one
/// is accepted as <c>queued</c> even when every slot is taken (no slot yet, counted against <c>maxQueued</c>). When the run
/// ahead of it ends, it needs a slot. In practice it inherits the slot its predecessor frees, because release and hand-over
/// happen under one lock. The general rule behind that: an accepted run that finds no free slot waits for one rather than
/// failing, and waiting runs get freed slots first, in the order they became ready, before any new run can take one.</item>
/// </list>
/// One lock guards it all. Finishing a run happens under that lock too, so anyone who has seen a run end (its status or
/// its terminal event) will find its slot free, and the next run of its session starts only after that terminal event.
/// </summary>
public sealed class RunScheduler(int maxConcurrent, int maxQueued)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedList<Run>> _sessions = new(StringComparer.Ordinal);
    private readonly LinkedList<Run> _readyForSlot = new();
    private int _running;
    private int _queued;
    private TaskCompletionSource _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Running
    {
        get { lock (_lock) return _running; }
    }

    public int Queued
    {
        get { lock (_lock) return _queued; }
    }

    /// <summary>
    /// Completes the next time a run releases its place. Read it before trying to start, then wait on it after a refusal: a
    /// release in between has then already completed it, so no wake-up is lost.
    /// </summary>
    public Task SlotFreed
    {
        get { lock (_lock) return _slotFreed.Task; }
    }

    /// <summary>Admits a new run: starts it, queues it behind its session (emitting run.queued), or refuses it.</summary>
    public AdmissionResult Admit(Run run)
    {
        lock (_lock)
        {
            if (run.SessionLine is { } session && _sessions.TryGetValue(session, out var line))
            {
                if (_queued >= maxQueued)
                    return AdmissionResult.QueueFull;
                line.AddLast(run);
                run.IsWaiting = true;
                _queued++;
                run.MarkQueued(position: line.Count - 1);
                return AdmissionResult.Queued;
            }
            if (_running >= maxConcurrent || _readyForSlot.Count > 0)
                return AdmissionResult.Busy;
            if (run.SessionLine is { } newSession)
                _sessions[newSession] = new LinkedList<Run>([run]);
            GrantSlotLocked(run);
        }
        run.StartSignal.TrySetResult();
        return AdmissionResult.Started;
    }

    /// <summary>Ends a run (<paramref name="finish"/> writes its terminal state) and frees its place for the runs behind it.</summary>
    public void Complete(Run run, Action<Run> finish)
    {
        List<Run> started;
        lock (_lock)
        {
            finish(run);
            started = ReleaseLocked(run);
        }
        Signal(started);
    }

    /// <summary>
    /// Removes a run that is still waiting (behind its session or for a slot) and ends it with <paramref name="finish"/>.
    /// False when the run is not waiting: it holds a slot or has already ended.
    /// </summary>
    public bool TryWithdraw(Run run, Action<Run> finish)
    {
        List<Run> started;
        lock (_lock)
        {
            if (!run.IsWaiting)
                return false;
            finish(run);
            started = ReleaseLocked(run);
        }
        Signal(started);
        return true;
    }

    private List<Run> ReleaseLocked(Run run)
    {
        if (run.HoldsSlot)
        {
            run.HoldsSlot = false;
            _running--;
        }
        else if (run.IsWaiting)
        {
            run.IsWaiting = false;
            _queued--;
            _readyForSlot.Remove(run);
        }

        if (run.SessionLine is { } session && _sessions.TryGetValue(session, out var line))
        {
            var wasFirst = line.First?.Value == run;
            line.Remove(run);
            if (line.First is null)
                _sessions.Remove(session);
            else if (wasFirst)
                _readyForSlot.AddLast(line.First.Value);
        }

        var started = new List<Run>();
        while (_running < maxConcurrent && _readyForSlot.First is { } next)
        {
            _readyForSlot.RemoveFirst();
            next.Value.IsWaiting = false;
            _queued--;
            GrantSlotLocked(next.Value);
            started.Add(next.Value);
        }
        return started;
    }

    private void GrantSlotLocked(Run run)
    {
        run.HoldsSlot = true;
        _running++;
    }

    private void Signal(List<Run> started)
    {
        TaskCompletionSource freed;
        lock (_lock)
        {
            freed = _slotFreed;
            _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        freed.TrySetResult();
        foreach (var run in started)
            run.StartSignal.TrySetResult();
    }
}
