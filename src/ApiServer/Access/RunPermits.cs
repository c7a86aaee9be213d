using System.Threading.RateLimiting;

namespace ApiServer.Access;

/// <summary>
/// One key's runs in flight against its <c>concurrent_runs</c>. Unlike a <see cref="ConcurrencyLimiter"/>, whose limit is fixed
/// when it is made, the limit here can change under held permits: a key file reload that lowers it refuses new runs until
/// enough running ones end, and one that raises it admits more at once, without forgetting the runs already executing.
/// </summary>
public sealed class RunPermits
{
    private readonly Lock _lock = new();
    private int _inFlight;
    private int _limit;
    private Action? _onIdle;
    private bool _dropped;
    private TaskCompletionSource _freed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int InFlight
    {
        get { lock (_lock) return _inFlight; }
    }

    /// <summary>
    /// Completes the next time a permit is released or the limit changes. Read it before trying to acquire, then wait on it
    /// after a refusal: a release in between has then already completed it, so no wake-up is lost (job firings wait this way).
    /// </summary>
    public Task Freed
    {
        get { lock (_lock) return _freed.Task; }
    }

    /// <summary>Releases <paramref name="lease"/> when the run it admitted ends, which is after the request that started it.</summary>
    public static void ReleaseWhenEnded(RateLimitLease lease, Task execution) =>
        _ = execution.ContinueWith(static (_, state) => ((RateLimitLease)state!).Dispose(), lease, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Sets the limit in force; null when these permits were already dropped (the caller takes the key's new ones).</summary>
    internal RunPermits? WithLimit(int limit)
    {
        lock (_lock)
        {
            if (_dropped)
                return null;
            if (limit != _limit)
                SignalFreedLocked(); // a raised limit may admit a waiting firing
            _limit = limit;
            _onIdle = null; // the key is configured again: keep counting
        }
        return this;
    }

    /// <summary>
    /// The key left the file: <paramref name="drop"/> runs now when no run holds a permit, else when the last one is released,
    /// so a removed key's runs in flight stay counted until they end. Runs under the lock, so no permit is taken meanwhile.
    /// </summary>
    internal void Retire(Action drop)
    {
        lock (_lock)
        {
            if (_inFlight == 0)
                DropLocked(drop);
            else
                _onIdle = drop;
        }
    }

    private void DropLocked(Action drop)
    {
        _dropped = true;
        _onIdle = null;
        drop();
    }

    /// <summary>A permit, or a refused lease when the key already has its limit of runs in flight. Disposing the lease releases it.</summary>
    public RateLimitLease AttemptAcquire()
    {
        lock (_lock)
        {
            if (_inFlight >= _limit)
                return Lease.Refused;
            _inFlight++;
        }
        return new Lease(this);
    }

    private void Release()
    {
        lock (_lock)
        {
            SignalFreedLocked();
            if (--_inFlight == 0 && _onIdle is { } drop)
                DropLocked(drop);
        }
    }

    private void SignalFreedLocked()
    {
        // Continuations run asynchronously, never under this lock.
        var freed = _freed;
        _freed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        freed.SetResult();
    }

    private sealed class Lease(RunPermits? owner) : RateLimitLease
    {
        public static readonly Lease Refused = new(null);
        private RunPermits? _owner = owner;

        public override bool IsAcquired { get; } = owner is not null;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            // Once only: the run's end and the request's own cleanup may both dispose it.
            Interlocked.Exchange(ref _owner, null)?.Release();
        }
    }
}
