namespace ApiServer.Agent.Tests.Infrastructure;

/// <summary>
/// A clock that only moves when a test says so. Retry waits, idle timeouts and the breaker's break all run on it,
/// so tests assert delays instead of sleeping through them.
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private TaskCompletionSource _armed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
            return _now;
    }

    public override long GetTimestamp() => GetUtcNow().UtcTicks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock and fires every timer that fell due.</summary>
    public void Advance(TimeSpan by)
    {
        List<ManualTimer> due;
        lock (_gate)
        {
            _now += by;
            due = _timers.Where(t => t.DueAt <= _now).ToList();
            foreach (var timer in due)
                timer.DueAt = timer.Period > TimeSpan.Zero ? _now + timer.Period : null;
            _timers.RemoveAll(t => t.DueAt is null);
        }
        foreach (var timer in due)
            timer.Fire();
    }

    /// <summary>
    /// Waits until some timer is armed to fire exactly <paramref name="delay"/> from now, then advances by it.
    /// Needed because a Retrying event is published just before Polly arms its delay timer.
    /// </summary>
    public async Task AdvanceWhenArmedAsync(TimeSpan delay)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            Task armed;
            lock (_gate)
            {
                // Task.Delay truncates to whole milliseconds, so allow that much slack.
                if (_timers.Any(t => t.DueAt - _now is { } due && due <= delay && delay - due < TimeSpan.FromMilliseconds(1)))
                    break;
                armed = _armed.Task;
            }
            try
            {
                await armed.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                lock (_gate)
                    throw new TimeoutException($"No timer armed for {delay}; armed: {string.Join(", ", _timers.Select(t => t.DueAt - _now))}");
            }
        }
        Advance(delay);
    }

    private void Arm(ManualTimer timer, TimeSpan dueTime, TimeSpan period)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            _timers.Remove(timer);
            timer.Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
            timer.DueAt = dueTime == Timeout.InfiniteTimeSpan ? null : _now + dueTime;
            if (timer.DueAt is not null)
                _timers.Add(timer);
            signal = _armed;
            _armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        signal.TrySetResult();
        if (dueTime == TimeSpan.Zero)
            Advance(TimeSpan.Zero);
    }

    private void Disarm(ManualTimer timer)
    {
        lock (_gate)
            _timers.Remove(timer);
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? DueAt { get; set; }

        public TimeSpan Period { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            owner.Arm(this, dueTime, period);
            return true;
        }

        public void Fire() => callback(state);

        public void Dispose() => owner.Disarm(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
