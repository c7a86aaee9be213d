namespace ApiServer.Hosting;

/// <summary>Live counters for health output. Incremented by whatever holds a stream or a run open.</summary>
public sealed class ServerActivity(TimeProvider time)
{
    private int _activeStreams;
    private int _activeRuns;

    public DateTimeOffset StartedAt { get; } = time.GetUtcNow();

    public int ActiveStreams => Volatile.Read(ref _activeStreams);

    public int ActiveRuns => Volatile.Read(ref _activeRuns);

    public TimeSpan Uptime => time.GetUtcNow() - StartedAt;

    /// <summary>Counts a stream as open until the returned handle is disposed.</summary>
    public IDisposable TrackStream() => new Tracker(ref _activeStreams, this, isRun: false);

    public IDisposable TrackRun() => new Tracker(ref _activeRuns, this, isRun: true);

    private sealed class Tracker : IDisposable
    {
        private readonly ServerActivity _owner;
        private readonly bool _isRun;
        private int _disposed;

        public Tracker(ref int counter, ServerActivity owner, bool isRun)
        {
            Interlocked.Increment(ref counter);
            _owner = owner;
            _isRun = isRun;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                return;
            if (_isRun)
                Interlocked.Decrement(ref _owner._activeRuns);
            else
                Interlocked.Decrement(ref _owner._activeStreams);
        }
    }
}
