using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Idempotency;

public enum ClaimOutcome
{
    /// <summary>This request owns the key and runs.</summary>
    Claimed,

    /// <summary>The same request ran or is running: replay or follow it.</summary>
    Duplicate,

    /// <summary>The key was used with a different body.</summary>
    Reused,
}

public interface IIdempotencyStore
{
    /// <summary>Atomically claims <paramref name="key"/> or returns the entry that holds it.</summary>
    (ClaimOutcome Outcome, IdempotencyEntry Entry) Claim(string key, string fingerprint);

    /// <summary>The owner finished. A cacheable outcome is kept for the TTL; anything else frees the key for a retry.</summary>
    void Finish(IdempotencyEntry entry, bool cacheable);

    int Count { get; }

    /// <summary>Entries whose request has finished and that are kept for replay.</summary>
    int FinishedCount { get; }
}

/// <summary>
/// In-memory idempotency records, bounded by entry count and total bytes (oldest finished entries go first) and expired
/// after the TTL. One lock makes the claim atomic, so two racing requests can't both run.
/// </summary>
public sealed class InMemoryIdempotencyStore(IOptions<ApiServerOptions> options, TimeProvider time) : IIdempotencyStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, IdempotencyEntry> _entries = new(StringComparer.Ordinal);

    // Finished entries in finish order, which is also expiry order because the TTL is fixed.
    private readonly LinkedList<IdempotencyEntry> _finished = new();
    private long _bytes;

    private TimeSpan Ttl => TimeSpan.FromSeconds(options.Value.IdempotencyTtlSeconds);

    public int Count
    {
        get { lock (_gate) return _entries.Count; }
    }

    public int FinishedCount
    {
        get { lock (_gate) return _finished.Count; }
    }

    public (ClaimOutcome Outcome, IdempotencyEntry Entry) Claim(string key, string fingerprint)
    {
        lock (_gate)
        {
            Purge();
            if (_entries.TryGetValue(key, out var existing))
                return (existing.Fingerprint == fingerprint ? ClaimOutcome.Duplicate : ClaimOutcome.Reused, existing);
            var entry = new IdempotencyEntry(key, fingerprint);
            _entries[key] = entry;
            return (ClaimOutcome.Claimed, entry);
        }
    }

    public void Finish(IdempotencyEntry entry, bool cacheable)
    {
        lock (_gate)
        {
            if (!cacheable || entry.IsOverflowed)
            {
                Remove(entry);
                return;
            }
            entry.ExpiresAt = time.GetUtcNow() + Ttl;
            _finished.AddLast(entry);
            _bytes += entry.Bytes;
            Purge();
        }
    }

    private void Purge()
    {
        var now = time.GetUtcNow();
        var maxEntries = options.Value.IdempotencyMaxEntries;
        var maxBytes = options.Value.IdempotencyMaxBytes;
        while (_finished.First is { } oldest && (oldest.Value.ExpiresAt <= now || _entries.Count > maxEntries || _bytes > maxBytes))
        {
            _finished.RemoveFirst();
            _bytes -= oldest.Value.Bytes;
            if (_entries.TryGetValue(oldest.Value.Key, out var current) && ReferenceEquals(current, oldest.Value))
                _entries.Remove(oldest.Value.Key);
        }
    }

    private void Remove(IdempotencyEntry entry)
    {
        if (_entries.TryGetValue(entry.Key, out var current) && ReferenceEquals(current, entry))
            _entries.Remove(entry.Key);
    }
}
