using ApiServer.Configuration;
using ApiServer.Data;
using ApiServer.Idempotency;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ApiServer.Tests.Idempotency;

/// <summary>The bounds of the in-memory layer (responses being recorded) and of the SQLite store (finished responses).</summary>
public sealed class IdempotencyStoreTests : IAsyncLifetime
{
    private static readonly IdempotencyScope Scope = new("/v1/chat/completions", IdempotencyScope.Anonymous);

    private readonly ApiServerOptions _settings = new() { IdempotencyMaxBytes = 4096, IdempotencyMaxEntryBytes = 3000 };
    private readonly Infrastructure.ShiftableTimeProvider _time = new();
    private readonly SqliteDatabase _database = SqliteDatabase.InMemory(SqliteIdempotencyStore.Migrations);
    private SqliteIdempotencyStore _store = null!;

    public Task InitializeAsync()
    {
        _store = NewStore();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    /// <summary>Another store on the same database: what a restarted process sees.</summary>
    private SqliteIdempotencyStore NewStore() => new(_database, Options.Create(_settings), _time, NullLogger.Instance);

    private async Task<IdempotencyEntry> ClaimAsync(string key, SqliteIdempotencyStore? store = null)
    {
        var claim = await (store ?? _store).ClaimAsync(Scope, key, "fingerprint", CancellationToken.None);
        Assert.Equal(ClaimOutcome.Claimed, claim.Outcome);
        return claim.Running!;
    }

    private void Write(IdempotencyEntry entry, int bytes, int chunk = 500)
    {
        for (var left = bytes; left > 0; left -= chunk)
            _store.Record(entry, Enumerable.Repeat((byte)'x', Math.Min(chunk, left)).ToArray());
    }

    /// <summary>A response recorded to the end and kept for replay, as the middleware finishes one.</summary>
    private async Task<IdempotencyEntry> KeepAsync(string key, int bytes)
    {
        var entry = await ClaimAsync(key);
        entry.Start(200, [KeyValuePair.Create("Content-Type", "application/json")], hasContentLength: true);
        Write(entry, bytes);
        entry.Complete(succeeded: true);
        await _store.FinishAsync(entry, cacheable: true);
        return entry;
    }

    [Fact]
    public async Task Responses_still_running_count_against_the_byte_budget()
    {
        var first = await ClaimAsync("a");
        var second = await ClaimAsync("b");

        Write(first, 3000);
        Write(second, 2000);

        Assert.False(first.IsOverflowed);
        Assert.True(second.IsOverflowed);
        Assert.Equal(0, second.Bytes);
        Assert.Equal(3000, _store.Running.Bytes);
    }

    [Fact]
    public async Task A_response_over_the_entry_cap_overflows_is_not_kept_and_releases_what_it_held()
    {
        var entry = await ClaimAsync("a");
        Write(entry, 3500);
        Assert.True(entry.IsOverflowed);
        Assert.Equal(0, _store.Running.Bytes);

        entry.Complete(succeeded: true);
        await _store.FinishAsync(entry, cacheable: true);

        Assert.Equal(0, await _store.CountFinishedAsync(CancellationToken.None));
        Assert.Equal(0, _store.Running.Count);
        await ClaimAsync("a");
    }

    [Fact]
    public async Task An_outcome_that_is_not_kept_releases_its_bytes_and_its_key()
    {
        var entry = await ClaimAsync("a");
        Write(entry, 1000);

        entry.Complete(succeeded: false);
        await _store.FinishAsync(entry, cacheable: false);

        Assert.Equal(0, _store.Running.Bytes);
        Assert.Equal(0, _store.Running.Count);
        await ClaimAsync("a");
    }

    [Fact]
    public async Task A_finished_response_is_replayed_from_the_store_after_it_leaves_memory()
    {
        await KeepAsync("a", 1200);
        Assert.Equal(0, _store.Running.Count);

        var claim = await NewStore().ClaimAsync(Scope, "a", "fingerprint", CancellationToken.None);

        Assert.Equal(ClaimOutcome.Duplicate, claim.Outcome);
        var stored = Assert.IsType<StoredIdempotentResponse>(claim.Stored);
        Assert.Equal(200, stored.StatusCode);
        Assert.Equal("application/json", stored.Headers.Single(h => h.Key == "Content-Type").Value);
        await using var body = await _store.OpenBodyAsync(stored, CancellationToken.None);
        using var copy = new MemoryStream();
        await body!.CopyToAsync(copy, 100);
        Assert.Equal(Enumerable.Repeat((byte)'x', 1200), copy.ToArray());
        Assert.Equal(ClaimOutcome.Reused, (await _store.ClaimAsync(Scope, "a", "other", CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task The_byte_bound_evicts_the_oldest_finished_records()
    {
        await KeepAsync("old", 2500);
        await KeepAsync("new", 2500);

        Assert.Equal(1, await _store.CountFinishedAsync(CancellationToken.None));
        await ClaimAsync("old");
        Assert.Equal(ClaimOutcome.Duplicate, (await _store.ClaimAsync(Scope, "new", "fingerprint", CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task Expired_records_are_not_replayed()
    {
        _settings.IdempotencyTtlSeconds = 10;
        await KeepAsync("a", 100);

        _time.Advance(TimeSpan.FromSeconds(11));

        await ClaimAsync("a");
    }

    [Fact]
    public async Task A_record_left_running_by_a_dead_process_is_dropped_and_the_key_runs_again()
    {
        var orphan = await ClaimAsync("a");
        Write(orphan, 100);

        var restarted = NewStore();

        Assert.Equal(0, await restarted.CountFinishedAsync(CancellationToken.None));
        await ClaimAsync("a", restarted);
    }

    [Fact]
    public async Task Many_concurrent_recordings_never_hold_more_than_the_budget()
    {
        var entries = new List<IdempotencyEntry>();
        for (var i = 0; i < 16; i++)
            entries.Add(await ClaimAsync($"k{i}"));

        Parallel.ForEach(entries, entry => Write(entry, 2000, chunk: 100));

        var kept = entries.Where(e => !e.IsOverflowed).Sum(e => e.Bytes);
        Assert.InRange(kept, 0, 4096);
        Assert.Equal(kept, _store.Running.Bytes);
    }
}
