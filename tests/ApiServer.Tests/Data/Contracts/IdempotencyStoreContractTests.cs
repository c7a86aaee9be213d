using System.Text;
using ApiServer.Idempotency;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>IIdempotencyStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class IdempotencyStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly IdempotencyScope Scope = new("/v1/chat/completions", IdempotencyScope.Anonymous);

    public static TheoryData<string> Backends => StoreBackend.Names;

    internal static async Task<IdempotencyEntry> ClaimAsync(IIdempotencyStore store, string key, string fingerprint = "f1")
    {
        var claim = await store.ClaimAsync(Scope, key, fingerprint, None);
        Assert.Equal(ClaimOutcome.Claimed, claim.Outcome);
        return claim.Running!;
    }

    /// <summary>Records <paramref name="body"/> as the whole response and finishes the entry, as the middleware does.</summary>
    internal static async Task FinishAsync(IIdempotencyStore store, IdempotencyEntry entry, string body, bool cacheable = true, int status = 200)
    {
        entry.Start(status, [KeyValuePair.Create("Content-Type", "application/json")], hasContentLength: true);
        store.Record(entry, Encoding.UTF8.GetBytes(body));
        entry.Complete(succeeded: cacheable);
        await store.FinishAsync(entry, cacheable);
    }

    internal static async Task<string> ReadBodyAsync(IIdempotencyStore store, StoredIdempotentResponse stored)
    {
        await using var body = await store.OpenBodyAsync(stored, None);
        Assert.NotNull(body);
        using var reader = new StreamReader(body);
        return await reader.ReadToEndAsync();
    }

    internal static Task<IdempotencyClaim> Claim(IIdempotencyStore store, string key, string fingerprint = "f1", CancellationToken cancellationToken = default) =>
        store.ClaimAsync(Scope, key, fingerprint, cancellationToken);

    [Theory, MemberData(nameof(Backends))]
    public async Task A_duplicate_while_running_follows_the_running_entry_and_another_body_is_a_reuse(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Idempotency();
        var entry = await ClaimAsync(store, "k1");

        var duplicate = await Claim(store, "k1");
        var reused = await Claim(store, "k1", "f2");

        Assert.Equal(ClaimOutcome.Duplicate, duplicate.Outcome);
        Assert.Same(entry, duplicate.Running);
        Assert.Equal(ClaimOutcome.Reused, reused.Outcome);
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_finished_response_is_replayed_whole_by_a_later_process(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var first = backend.Idempotency();
        var body = new string('x', 70_000) + "end"; // more than one read of the replay stream
        await FinishAsync(first, await ClaimAsync(first, "k1"), body, status: 201);

        var later = backend.Idempotency();
        var replay = await Claim(later, "k1");

        Assert.Equal(ClaimOutcome.Duplicate, replay.Outcome);
        var stored = replay.Stored!;
        Assert.Equal((201, true, (long)body.Length), (stored.StatusCode, stored.HasContentLength, stored.Length));
        Assert.Equal([KeyValuePair.Create("Content-Type", "application/json")], stored.Headers);
        Assert.Equal(body, await ReadBodyAsync(later, stored));
        Assert.Equal(ClaimOutcome.Reused, (await Claim(later, "k1", "f2")).Outcome);
        Assert.Equal(1, await later.CountFinishedAsync(None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task An_outcome_that_is_not_cacheable_frees_the_key_for_a_retry(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Idempotency();
        await FinishAsync(store, await ClaimAsync(store, "k1"), """{"error":"upstream"}""", cacheable: false, status: 502);

        Assert.Equal(ClaimOutcome.Claimed, (await Claim(store, "k1")).Outcome);
        Assert.Equal(0, await store.CountFinishedAsync(None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Past_the_entry_bound_and_the_ttl_the_oldest_records_go(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        backend.Options.IdempotencyMaxEntries = 2;
        var store = backend.Idempotency();
        foreach (var key in new[] { "k1", "k2", "k3" })
        {
            await FinishAsync(store, await ClaimAsync(store, key), "{}");
            backend.Time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(2, await store.CountFinishedAsync(None));
        Assert.Equal(ClaimOutcome.Claimed, (await Claim(store, "k1")).Outcome);
        Assert.Equal(ClaimOutcome.Duplicate, (await Claim(store, "k3")).Outcome);

        backend.Time.Advance(TimeSpan.FromSeconds(backend.Options.IdempotencyTtlSeconds + 1));
        Assert.Equal(ClaimOutcome.Claimed, (await Claim(store, "k3")).Outcome);
    }
}
