using ApiServer.Agent;
using ApiServer.Sse;

namespace ApiServer.Runs;

/// <summary>One recorded event of a run: its sequence number (the SSE <c>id</c>), its name, and its pre-encoded frame.</summary>
public readonly record struct RunEvent(long Sequence, string Name, SseFrame Frame);

/// <summary>Events after a subscriber's position, and whether the log has ended (nothing will follow them).</summary>
public readonly record struct RunEventBatch(IReadOnlyList<RunEvent> Events, bool Completed);

/// <summary>
/// The append-only event log of one run. Sequence numbers start at 1 and have no gaps, so event <c>n</c> sits at index
/// <c>n - 1</c> and resuming after <c>Last-Event-ID: n</c> is a slice. Subscribers wait on a signal that every append
/// replaces; nothing polls.
/// <para>
/// Bounds: at most <see cref="DefaultMaxEvents"/> (10,000) events and <c>maxBytes</c> (API_SERVER_RUN_EVENTS_MAX_BYTES,
/// default <see cref="DefaultMaxBytes"/>, 4 MiB) of encoded frames per run, counted by <see cref="MemorySize"/>. The newest
/// events are the ones dropped, not the oldest: a replay from the start and every <c>Last-Event-ID</c> then stay exact,
/// and a subscriber never asks for an event that was dropped, since a dropped event never got an id. Two slots are reserved: when the next event would cross either limit, the log appends one
/// <c>run.events_truncated</c> marker and drops every later non-terminal event; the terminal event (run.completed,
/// run.failed or run.cancelled) is always kept, even past the byte limit. Dropped events are dropped for every subscriber,
/// live or late, so all of them see the same sequence and <c>Last-Event-ID</c> stays meaningful. Nothing is lost for the
/// result: run.completed carries the whole output and usage.
/// </para>
/// </summary>
public sealed class RunEventLog(Func<long, SseFrame> truncationMarker, int maxEvents = RunEventLog.DefaultMaxEvents, long maxBytes = RunEventLog.DefaultMaxBytes)
{
    public const int DefaultMaxEvents = 10_000;
    public const long DefaultMaxBytes = 4 * 1024 * 1024;

    private readonly List<RunEvent> _events = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _bytes;

    private bool _completed;
    private bool _truncated;

    public bool IsTruncated
    {
        get { lock (_lock) return _truncated; }
    }

    /// <summary>Called after every event is added, outside the log's lock (a replica's database writer listens here).</summary>
    public Action? Appended { get; set; }

    /// <summary>Appends a non-terminal event built for its sequence number. False when it was dropped (log full or ended).</summary>
    public bool Append(string name, Func<long, SseFrame> build)
    {
        TaskCompletionSource signal;
        bool kept;
        lock (_lock)
        {
            if (_completed || _truncated)
                return false;
            var frame = build(_events.Count + 1);
            // Two slots stay free: one for the truncation marker, one for the terminal event.
            kept = _events.Count + 2 < maxEvents && _bytes + MemorySize.Of(frame.Bytes) <= maxBytes;
            if (kept)
            {
                AddLocked(name, frame);
            }
            else
            {
                _truncated = true;
                AddLocked("run.events_truncated", truncationMarker(_events.Count + 1));
            }
            signal = SwapSignalLocked();
        }
        signal.TrySetResult();
        Appended?.Invoke();
        return kept;
    }

    /// <summary>Appends the terminal event and ends the log. False when the log had already ended.</summary>
    public bool Complete(string name, Func<long, SseFrame> build)
    {
        TaskCompletionSource signal;
        lock (_lock)
        {
            if (_completed)
                return false;
            AddLocked(name, build(_events.Count + 1));
            _completed = true;
            signal = SwapSignalLocked();
        }
        signal.TrySetResult();
        Appended?.Invoke();
        return true;
    }

    /// <summary>
    /// The events after sequence <paramref name="after"/>, waiting for at least one unless the log has ended.
    /// An empty batch means the log ended and the subscriber has everything.
    /// </summary>
    public async Task<RunEventBatch> ReadAfterAsync(long after, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (after < _events.Count)
                {
                    var start = (int)Math.Max(0, after);
                    return new RunEventBatch(_events.GetRange(start, _events.Count - start), _completed);
                }
                if (_completed)
                    return new RunEventBatch([], Completed: true);
                changed = _changed.Task;
            }
            await changed.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// At most <paramref name="max"/> events after sequence <paramref name="after"/>, without waiting, and whether they reach the
    /// log's end (it has ended and nothing follows them).
    /// </summary>
    public IReadOnlyList<RunEvent> Slice(long after, int max, out bool reachesEnd)
    {
        lock (_lock)
        {
            var start = (int)Math.Clamp(after, 0, _events.Count);
            var count = Math.Min(max, _events.Count - start);
            reachesEnd = _completed && start + count == _events.Count;
            return _events.GetRange(start, count);
        }
    }

    /// <summary>A copy of every event so far.</summary>
    public IReadOnlyList<RunEvent> Snapshot()
    {
        lock (_lock)
            return [.. _events];
    }

    private void AddLocked(string name, SseFrame frame)
    {
        _events.Add(new RunEvent(_events.Count + 1, name, frame));
        _bytes += MemorySize.Of(frame.Bytes);
    }

    private TaskCompletionSource SwapSignalLocked()
    {
        var signal = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return signal;
    }
}
