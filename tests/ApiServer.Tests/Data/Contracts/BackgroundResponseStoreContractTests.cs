using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Responses.Background;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>IBackgroundResponseStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class BackgroundResponseStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static TheoryData<string> Backends => StoreBackend.Names;

    private static BackgroundRecord Queued(string id, string owner = "alice") => new(id, owner, "queued", $$"""{"id":"{{id}}","status":"queued"}""");

    [Theory, MemberData(nameof(Backends))]
    public async Task A_record_is_written_when_accepted_and_rewritten_when_it_ends(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Background();
        var now = backend.Time.GetUtcNow();
        await store.InsertAsync(Queued("resp_1"), now, None);
        await store.InsertAsync(Queued("resp_2", "bob"), now.AddSeconds(1), None);

        Assert.Equal(Queued("resp_1"), await store.GetAsync("resp_1", None));
        await store.FinishAsync("resp_1", "completed", """{"id":"resp_1","status":"completed"}""", now.AddSeconds(2), None);
        Assert.Equal(new BackgroundRecord("resp_1", "alice", "completed", """{"id":"resp_1","status":"completed"}"""), await store.GetAsync("resp_1", None));

        // A restart (SQLite) or a new replica whose predecessor is gone (PostgreSQL): only unfinished records are left over.
        var restarted = backend.Background(replicaId: "replica-b");
        Assert.Equal([Queued("resp_2", "bob")], await restarted.UnfinishedAsync(None));

        Assert.True(await store.DeleteAsync("resp_2", None));
        Assert.False(await store.DeleteAsync("resp_2", None));
        Assert.Null(await store.GetAsync("resp_2", None));
        Assert.Empty(await restarted.UnfinishedAsync(None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Past_capacity_the_oldest_finished_records_go_and_unfinished_ones_stay(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Background(capacity: 2);
        var now = backend.Time.GetUtcNow();
        await store.InsertAsync(Queued("resp_running"), now, None);
        for (var i = 1; i <= 3; i++)
        {
            await store.InsertAsync(Queued($"resp_{i}"), now, None);
            await store.FinishAsync($"resp_{i}", "completed", "{}", now.AddSeconds(i), None);
        }

        Assert.Null(await store.GetAsync("resp_1", None));
        Assert.NotNull(await store.GetAsync("resp_2", None));
        Assert.NotNull(await store.GetAsync("resp_3", None));
        Assert.Equal("queued", (await store.GetAsync("resp_running", None))!.Status);
    }

    [PostgresFact]
    public async Task A_live_replicas_unfinished_records_are_left_alone_until_its_heartbeat_stops()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var live = backend.Background(replicaId: "replica-live");
        await live.InsertAsync(Queued("resp_1"), backend.Time.GetUtcNow(), None);
        await using var heartbeat = new PostgresReplicaHeartbeat(backend.Database, new ReplicaIdentity("replica-live"), backend.Time,
            Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()),
            NullLogger<PostgresReplicaHeartbeat>.Instance);
        await heartbeat.StartAsync(None);
        var starting = backend.Background(replica: await backend.OpenReplicaAsync(), replicaId: "replica-new");

        Assert.Empty(await starting.UnfinishedAsync(None));
        Assert.Empty(await live.UnfinishedAsync(None)); // a replica never recovers its own running turns

        await heartbeat.StopAsync(None); // the live replica dies
        await backend.AgeHeartbeatAsync("replica-live", PostgresReplicaHeartbeat.DefaultTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(["resp_1"], (await starting.UnfinishedAsync(None)).Select(r => r.Id));
    }
}
