namespace ApiServer.Idempotency;

/// <summary>
/// One claimed key while its request runs: the request's fingerprint and the response as it is produced (status, headers, body
/// chunks). Duplicates that arrive meanwhile read the same chunks as they are appended; once it is finished the store keeps it.
/// </summary>
public sealed class IdempotencyEntry(IdempotencyScope scope, string key, string fingerprint)
{
    private readonly object _gate = new();
    private readonly List<ReadOnlyMemory<byte>> _chunks = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IdempotencyScope Scope { get; } = scope;
    public string Key { get; } = key;
    public string Fingerprint { get; } = fingerprint;

    /// <summary>The store's id for the record this entry claimed.</summary>
    public long RecordId { get; set; }
    public int StatusCode { get; private set; }
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; private set; } = [];
    public bool HasContentLength { get; private set; }
    public bool IsStarted { get; private set; }
    public bool IsCompleted { get; private set; }

    /// <summary>The body grew past the per-entry cap: it can no longer be replayed whole.</summary>
    public bool IsOverflowed { get; private set; }

    public long Bytes { get; private set; }

    public void Start(int statusCode, IReadOnlyList<KeyValuePair<string, string>> headers, bool hasContentLength)
    {
        lock (_gate)
        {
            StatusCode = statusCode;
            Headers = headers;
            HasContentLength = hasContentLength;
            IsStarted = true;
            Signal();
        }
    }

    /// <summary>Appends a copy of written bytes (the store has already counted them against its budget).</summary>
    internal void Append(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            _chunks.Add(bytes.ToArray());
            Bytes += bytes.Length;
            Signal();
        }
    }

    /// <summary>Drops the recorded body for good; returns how many bytes it held, for the store to release.</summary>
    internal long Overflow()
    {
        lock (_gate)
        {
            var held = Bytes;
            IsOverflowed = true;
            _chunks.Clear();
            Bytes = 0;
            Signal();
            return held;
        }
    }

    /// <summary>False when the original request ended in a way that is not replayed (5xx, a transient status, a failed stream).</summary>
    public bool Succeeded { get; private set; }

    /// <summary>The claim never ran here: the store found the key answered or held elsewhere, or gave up on it.</summary>
    public bool IsAbandoned { get; private set; }

    /// <summary>Ends a claim that did not run, so its followers claim the key again instead of replaying nothing.</summary>
    public void Abandon()
    {
        lock (_gate)
        {
            IsAbandoned = true;
            IsCompleted = true;
            Signal();
        }
    }

    /// <summary>Waits until the response starts or the claim ends; true when the claim was abandoned.</summary>
    public async Task<bool> WaitAbandonedAsync(CancellationToken cancellationToken)
    {
        await WaitStartedAsync(cancellationToken);
        return IsAbandoned;
    }

    public void Complete(bool succeeded)
    {
        lock (_gate)
        {
            Succeeded = succeeded;
            IsCompleted = true;
            Signal();
        }
    }

    /// <summary>Chunks from <paramref name="from"/> on, and a task that completes when anything changes.</summary>
    public (IReadOnlyList<ReadOnlyMemory<byte>> Chunks, bool Completed, bool Overflowed, Task Changed) Read(int from)
    {
        lock (_gate)
            return (from < _chunks.Count ? _chunks.GetRange(from, _chunks.Count - from) : [], IsCompleted, IsOverflowed, _changed.Task);
    }

    public Task WaitStartedAsync(CancellationToken cancellationToken)
    {
        Task changed;
        lock (_gate)
        {
            if (IsStarted || IsCompleted)
                return Task.CompletedTask;
            changed = _changed.Task;
        }
        return WaitAsync(changed, cancellationToken);

        async Task WaitAsync(Task signal, CancellationToken token)
        {
            await signal.WaitAsync(token);
            await WaitStartedAsync(token);
        }
    }

    private void Signal()
    {
        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }
}
