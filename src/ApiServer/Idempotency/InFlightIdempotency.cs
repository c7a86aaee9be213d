using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Idempotency;

/// <summary>
/// The keys whose requests are running in this process, so a duplicate can follow the live response instead of running again.
/// What they record is bounded in bytes: per entry by <see cref="ApiServerOptions.IdempotencyMaxEntryBytes"/> and together by
/// <see cref="ApiServerOptions.IdempotencyMaxBytes"/>; past either, the entry overflows (its copy is dropped, the owner's own
/// response is unaffected, duplicates are told to retry). One lock makes a claim atomic, so two racing requests can't both run.
/// Finished responses are not kept here: the store persists them.
/// </summary>
public sealed class InFlightIdempotency(IOptions<ApiServerOptions> options)
{
    private readonly object _gate = new();
    private readonly Dictionary<(IdempotencyScope Scope, string Key), IdempotencyEntry> _entries = [];
    private long _bytes; // under _gate

    public int Count
    {
        get { lock (_gate) return _entries.Count; }
    }

    /// <summary>Bytes recorded by running entries, counted against <see cref="ApiServerOptions.IdempotencyMaxBytes"/>.</summary>
    public long Bytes
    {
        get { lock (_gate) return _bytes; }
    }

    /// <summary>The store records of the entries running here (a claim still waiting for the store has none yet).</summary>
    public long[] RecordIds()
    {
        lock (_gate)
            return [.. _entries.Values.Select(e => e.RecordId).Where(id => id > 0)];
    }

    /// <summary>Claims the key for a new entry, or returns the running entry that holds it.</summary>
    public (ClaimOutcome Outcome, IdempotencyEntry Entry) Claim(IdempotencyScope scope, string key, string fingerprint)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((scope, key), out var running))
                return (running.Fingerprint == fingerprint ? ClaimOutcome.Duplicate : ClaimOutcome.Reused, running);
            var entry = new IdempotencyEntry(scope, key, fingerprint);
            _entries[(scope, key)] = entry;
            return (ClaimOutcome.Claimed, entry);
        }
    }

    public void Record(IdempotencyEntry entry, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
            return;
        // Under the gate, so Release sees every byte an append counted. A write after the owner finished is not recorded.
        lock (_gate)
        {
            if (entry.IsOverflowed || entry.IsCompleted)
                return;
            if (entry.Bytes + bytes.Length > options.Value.IdempotencyMaxEntryBytes || _bytes + bytes.Length > options.Value.IdempotencyMaxBytes)
            {
                _bytes -= entry.Overflow();
                return;
            }
            _bytes += bytes.Length;
            entry.Append(bytes);
        }
    }

    /// <summary>Forgets the entry and its bytes. Duplicates already following it keep their reference and finish reading it.</summary>
    public void Release(IdempotencyEntry entry)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue((entry.Scope, entry.Key), out var current) || !ReferenceEquals(current, entry))
                return;
            _entries.Remove((entry.Scope, entry.Key));
            _bytes -= entry.Bytes;
        }
    }
}
