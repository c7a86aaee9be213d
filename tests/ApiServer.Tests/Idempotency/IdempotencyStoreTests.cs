using ApiServer.Configuration;
using ApiServer.Idempotency;
using Microsoft.Extensions.Options;

namespace ApiServer.Tests.Idempotency;

public sealed class IdempotencyStoreTests
{
    private readonly InMemoryIdempotencyStore _store = new(
        Options.Create(new ApiServerOptions { IdempotencyMaxBytes = 4096, IdempotencyMaxEntryBytes = 3000 }), TimeProvider.System);

    private IdempotencyEntry Claim(string key)
    {
        var (outcome, entry) = _store.Claim(key, "fingerprint");
        Assert.Equal(ClaimOutcome.Claimed, outcome);
        return entry;
    }

    private void Write(IdempotencyEntry entry, int bytes, int chunk = 500)
    {
        for (var left = bytes; left > 0; left -= chunk)
            _store.Record(entry, new byte[Math.Min(chunk, left)]);
    }

    /// <summary>A response recorded to the end and kept for replay, as the middleware finishes one.</summary>
    private IdempotencyEntry Keep(string key, int bytes)
    {
        var entry = Claim(key);
        Write(entry, bytes);
        entry.Complete(succeeded: true);
        _store.Finish(entry, cacheable: true);
        return entry;
    }

    [Fact]
    public void Responses_still_running_count_against_the_byte_budget()
    {
        var first = Claim("a");
        var second = Claim("b");

        Write(first, 3000);
        Write(second, 2000);

        Assert.False(first.IsOverflowed);
        Assert.Equal(3000, first.Bytes);
        Assert.True(second.IsOverflowed);
        Assert.Equal(0, second.Bytes);
        Assert.Equal(3000, _store.Bytes);
    }

    [Fact]
    public void Finished_entries_give_way_to_a_response_being_recorded()
    {
        Keep("old", 3000);
        Assert.Equal(1, _store.FinishedCount);

        var current = Claim("new");
        Write(current, 2000);

        Assert.False(current.IsOverflowed);
        Assert.Equal(0, _store.FinishedCount);
        Assert.Equal(2000, _store.Bytes);
        Assert.Equal(ClaimOutcome.Claimed, _store.Claim("old", "fingerprint").Outcome);
    }

    [Fact]
    public void A_write_that_cannot_fit_beside_the_running_ones_is_refused_without_evicting_finished_entries()
    {
        Keep("kept", 1000);
        var running = Claim("running");
        Write(running, 3000);

        var late = Claim("late");
        Write(late, 1500, chunk: 1500);

        Assert.True(late.IsOverflowed);
        Assert.Equal(1, _store.FinishedCount);
        Assert.Equal(4000, _store.Bytes);
    }

    [Fact]
    public void A_response_over_the_entry_cap_overflows_and_releases_what_it_held()
    {
        var entry = Claim("a");

        Write(entry, 3500);

        Assert.True(entry.IsOverflowed);
        Assert.Equal(0, _store.Bytes);
        _store.Finish(entry, cacheable: true);
        Assert.Equal(0, _store.FinishedCount);
        Assert.Equal(0, _store.Count);
    }

    [Fact]
    public void An_outcome_that_is_not_kept_releases_its_bytes()
    {
        var entry = Claim("a");
        Write(entry, 1000);

        _store.Finish(entry, cacheable: false);

        Assert.Equal(0, _store.Bytes);
        Assert.Equal(0, _store.Count);
    }

    [Fact]
    public void A_write_after_the_owner_finished_is_not_recorded()
    {
        var entry = Keep("a", 1000);

        Write(entry, 500);

        Assert.Equal(1000, entry.Bytes);
        Assert.Equal(1000, _store.Bytes);
    }

    [Fact]
    public void Many_concurrent_recordings_never_hold_more_than_the_budget()
    {
        var entries = Enumerable.Range(0, 16).Select(i => Claim($"k{i}")).ToList();

        Parallel.ForEach(entries, entry => Write(entry, 2000, chunk: 100));

        var kept = entries.Where(e => !e.IsOverflowed).Sum(e => e.Bytes);
        Assert.InRange(kept, 0, 4096);
        Assert.Equal(kept, _store.Bytes);
        foreach (var entry in entries)
            _store.Finish(entry, cacheable: true);
        Assert.Equal(entries.Count(e => !e.IsOverflowed), _store.FinishedCount);
        Assert.Equal(kept, _store.Bytes);
    }
}
