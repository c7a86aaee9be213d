namespace ApiServer.Sessions;

/// <summary>
/// One async lock per key, created on demand and dropped when nobody holds or waits for it. Waiters are served in order. As
/// <see cref="ITurnLock"/> it is the whole turn lock of a single process; across replicas it stands in front of the database's.
/// </summary>
public sealed class KeyedLock : ITurnLock
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public async Task<IDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (_entries)
        {
            if (!_entries.TryGetValue(key, out entry!))
                _entries[key] = entry = new Entry();
            entry.References++;
        }
        try
        {
            await entry.Gate.WaitAsync(cancellationToken);
        }
        catch
        {
            Release(key, entry, held: false);
            throw;
        }
        return new Holder(this, key, entry);
    }

    async Task<IAsyncDisposable> ITurnLock.AcquireAsync(string key, CancellationToken cancellationToken) =>
        (Holder)await AcquireAsync(key, cancellationToken);

    /// <summary>True while someone holds the key's lock.</summary>
    public bool IsHeld(string key)
    {
        lock (_entries)
            return _entries.TryGetValue(key, out var entry) && entry.Gate.CurrentCount == 0;
    }

    /// <summary>How many callers hold or wait for the key's lock (health output and tests).</summary>
    public int QueueLength(string key)
    {
        lock (_entries)
            return _entries.TryGetValue(key, out var entry) ? entry.References : 0;
    }

    private void Release(string key, Entry entry, bool held)
    {
        if (held)
            entry.Gate.Release();
        lock (_entries)
        {
            if (--entry.References == 0)
                _entries.Remove(key);
        }
    }

    private sealed class Entry
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public int References;
    }

    private sealed class Holder(KeyedLock owner, string key, Entry entry) : IDisposable, IAsyncDisposable
    {
        private int _disposed;

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
                owner.Release(key, entry, held: true);
        }
    }
}
