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

/// <summary>A finished response kept for replay. Its body is read from the store when it is replayed.</summary>
public sealed record StoredIdempotentResponse(long Id, string Fingerprint, int StatusCode, IReadOnlyList<KeyValuePair<string, string>> Headers, bool HasContentLength, long Length);

/// <summary>
/// The answer to a claim: <see cref="Running"/> is the entry to record into (Claimed) or to follow live (Duplicate, still in this
/// process); <see cref="Stored"/> is a finished response to replay (Duplicate, from the store).
/// </summary>
public readonly record struct IdempotencyClaim(ClaimOutcome Outcome, IdempotencyEntry? Running = null, StoredIdempotentResponse? Stored = null);

/// <summary>
/// Idempotency records: running requests in memory (so duplicates follow them live), finished ones in a store that survives a
/// restart, with a TTL and entry and byte bounds.
/// </summary>
public interface IIdempotencyStore
{
    /// <summary>Atomically claims the key in its scope, or returns what holds it.</summary>
    Task<IdempotencyClaim> ClaimAsync(IdempotencyScope scope, string key, string fingerprint, CancellationToken cancellationToken);

    /// <summary>
    /// Keeps a copy of bytes the owner wrote, within the per-entry cap and the in-flight byte budget. Past either, the entry
    /// overflows: its copy is dropped (the owner's own response is unaffected) and duplicates are told to retry.
    /// </summary>
    void Record(IdempotencyEntry entry, ReadOnlySpan<byte> bytes);

    /// <summary>The owner finished. A cacheable outcome is kept for the TTL; anything else frees the key for a retry.</summary>
    Task FinishAsync(IdempotencyEntry entry, bool cacheable);

    /// <summary>The stored body, read as it is copied; null when it was evicted since the claim.</summary>
    Task<Stream?> OpenBodyAsync(StoredIdempotentResponse stored, CancellationToken cancellationToken);

    /// <summary>Finished responses kept for replay.</summary>
    Task<long> CountFinishedAsync(CancellationToken cancellationToken);
}
