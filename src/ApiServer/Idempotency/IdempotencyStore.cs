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

    /// <summary>
    /// Keeps a copy of bytes the owner wrote, within the per-entry cap and the store's byte budget. Past either, the entry
    /// overflows: its copy is dropped (the owner's own response is unaffected) and duplicates are told to retry.
    /// </summary>
    void Record(IdempotencyEntry entry, ReadOnlySpan<byte> bytes);

    /// <summary>The owner finished. A cacheable outcome is kept for the TTL; anything else frees the key for a retry.</summary>
    void Finish(IdempotencyEntry entry, bool cacheable);

    int Count { get; }

    /// <summary>Entries whose request has finished and that are kept for replay.</summary>
    int FinishedCount { get; }
}

/// <summary>
/// In-memory idempotency records, bounded by entry count and by total bytes (oldest finished entries go first) and expired
/// after the TTL. The byte budget covers responses still being recorded too, so many large responses in flight can't
/// outgrow it. One lock makes the claim atomic, so two racing requests can't both run.
/// </summary>
public sealed class InMemoryIdempotencyStore(IOptions<ApiServerOptions> options, TimeProvider time) : IIdempotencyStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, IdempotencyEntry> _entries = new(StringComparer.Ordinal);

    // Finished entries in finish order, which is also expiry order because the TTL is fixed.
    private readonly LinkedList<IdempotencyEntry> _finished = new();

    // Bytes held by finished entries, and by entries still recording. Both under _gate.
    private long _finishedBytes;
    private long _recordingBytes;

    private TimeSpan Ttl => TimeSpan.FromSeconds(options.Value.IdempotencyTtlSeconds);

    public int Count
    {
        get { lock (_gate) return _entries.Count; }
    }

    public int FinishedCount
    {
        get { lock (_gate) return _finished.Count; }
    }

    /// <summary>Bytes currently counted against <see cref="ApiServerOptions.IdempotencyMaxBytes"/>.</summary>
    public long Bytes
    {
        get { lock (_gate) return _finishedBytes + _recordingBytes; }
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

    public void Record(IdempotencyEntry entry, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
            return;
        // Under the gate, so Finish sees every byte an append counted. A write after the owner finished is not recorded.
        lock (_gate)
        {
            if (entry.IsOverflowed || entry.IsCompleted)
                return;
            // Only responses still being recorded can refuse a write; finished ones give way to it.
            if (entry.Bytes + bytes.Length > options.Value.IdempotencyMaxEntryBytes || _recordingBytes + bytes.Length > options.Value.IdempotencyMaxBytes)
            {
                _recordingBytes -= entry.Overflow();
                return;
            }
            _recordingBytes += bytes.Length;
            entry.Append(bytes);
            if (_finishedBytes + _recordingBytes > options.Value.IdempotencyMaxBytes)
                Purge();
        }
    }

    public void Finish(IdempotencyEntry entry, bool cacheable)
    {
        lock (_gate)
        {
            _recordingBytes -= entry.Bytes;
            if (!cacheable || entry.IsOverflowed)
            {
                Remove(entry);
                return;
            }
            _finishedBytes += entry.Bytes;
            entry.ExpiresAt = time.GetUtcNow() + Ttl;
            _finished.AddLast(entry);
            Purge();
        }
    }

    private void Purge()
    {
        var now = time.GetUtcNow();
        var maxEntries = options.Value.IdempotencyMaxEntries;
        var maxBytes = options.Value.IdempotencyMaxBytes;
        while (_finished.First is { } oldest && (oldest.Value.ExpiresAt <= now || _entries.Count > maxEntries || _finishedBytes + _recordingBytes > maxBytes))
        {
            _finished.RemoveFirst();
            _finishedBytes -= oldest.Value.Bytes;
            Remove(oldest.Value);
        }
    }

    private void Remove(IdempotencyEntry entry)
    {
        if (_entries.TryGetValue(entry.Key, out var current) && ReferenceEquals(current, entry))
            _entries.Remove(entry.Key);
    }
}
