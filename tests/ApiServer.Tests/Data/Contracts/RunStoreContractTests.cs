using System.Text;
using System.Text.Json;
using ApiServer.Configuration;
using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Responses.Background;
using ApiServer.Runs;
using ApiServer.Sse;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>
/// PostgresRunStore's contract: only PostgreSQL records runs (with SQLite one process holds them all), so these run on it alone,
/// each replica a connection pool of its own on one schema.
/// </summary>
public sealed class RunStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static RunRow Row(string id, string state = "running", long? finishedAt = null, string replica = "replica-a", bool background = false,
        string snapshot = """{"run_id":"x","status":"running"}""") =>
        new(id, "alice", replica, background, "s1", state, snapshot, 1_000, 2_000, finishedAt);

    private static RunEvent Event(long sequence, string name = "message.delta") =>
        new(sequence, name, new SseFrame(Encoding.UTF8.GetBytes($"id: {sequence}\ndata: {{\"event\":\"{name}\"}}\n\n"), IsEvent: true));

    private static IReadOnlyList<RunEvent> Events(long from, long to) => [.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => Event(i))];

    [PostgresFact]
    public async Task Another_replica_finds_a_run_and_reads_its_events_in_pages_until_the_terminal_state()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var a = new PostgresRunStore(backend.Database);
        var b = new PostgresRunStore(await backend.OpenReplicaAsync());

        Assert.True(await a.WriteAsync(Row("run_1"), writeState: true, Events(1, 300), None));
        Assert.Equal(new RunRecord("run_1", "alice", "replica-a", false, "running", """{"run_id":"x","status":"running"}"""), await b.FindAsync("run_1", None));
        Assert.Null(await b.FindAsync("run_2", None));

        var first = await b.ReadAfterAsync("run_1", 0, None);
        Assert.Equal((PostgresRunStore.BatchEvents, false), (first.Events.Count, first.Completed));
        Assert.Equal(Event(1).Frame.Bytes.ToArray(), first.Events[0].Frame.Bytes.ToArray());
        var rest = await b.ReadAfterAsync("run_1", PostgresRunStore.BatchEvents, None);
        Assert.Equal((300 - PostgresRunStore.BatchEvents, false), (rest.Events.Count, rest.Completed));

        // A write repeated after a lost acknowledgement adds nothing twice; the terminal state comes with the terminal event.
        Assert.True(await a.WriteAsync(Row("run_1", "completed", 3_000), writeState: true, [.. Events(299, 300), Event(301, "run.completed")], None));
        var end = await b.ReadAfterAsync("run_1", 300, None);
        Assert.Equal((1, true, "run.completed"), (end.Events.Count, end.Completed, end.Events[0].Name));
        Assert.Equal("completed", (await b.FindAsync("run_1", None))!.State);
        Assert.True((await b.ReadAfterAsync("run_1", 301, None)).Completed);
        Assert.True((await b.ReadAfterAsync("run_gone", 0, None)).Completed); // no record: nothing will come
    }

    [PostgresFact]
    public async Task A_dead_replicas_run_is_claimed_once_and_failed_with_its_terminal_event_and_a_late_write_changes_nothing()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var a = new PostgresRunStore(backend.Database);
        var replicaB = await backend.OpenReplicaAsync();
        await using (var connection = await backend.Database.OpenConnectionAsync(None))
            await connection.ExecuteAsync($"INSERT INTO replicas (id, started_at, heartbeat_at) VALUES ('replica-a', {PostgresReplicaHeartbeat.DatabaseNow}, {PostgresReplicaHeartbeat.DatabaseNow});");
        var background = backend.Background(replicaId: "replica-a");
        var accepted = JsonSerializer.Serialize(new ApiServer.Responses.ResponseObject { Id = "resp_1", CreatedAt = 1, Status = "in_progress", Model = "agent", Output = [],
            ToolChoice = JsonSerializer.SerializeToElement("auto", ApiServer.Json.ApiJsonContext.Default.String) },
            ApiServer.Json.ApiJsonContext.Default.ResponseObject);
        await background.InsertAsync(new BackgroundRecord("resp_1", "alice", "queued", accepted), backend.Time.GetUtcNow(), None);
        await a.WriteAsync(Row("run_1"), writeState: true, Events(1, 2), None);
        await a.WriteAsync(Row("resp_1", background: true, snapshot: accepted), writeState: true, Events(1, 3), None);
        var recovery = Recovery(new PostgresRunStore(replicaB), "replica-b", backend);
        var rival = Recovery(new PostgresRunStore(await backend.OpenReplicaAsync()), "replica-c", backend);

        Assert.Equal(0, await recovery.RecoverOnceAsync(None));
        await backend.AgeHeartbeatAsync("replica-a", PostgresReplicaHeartbeat.DefaultTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(2, await recovery.RecoverOnceAsync(None) + await rival.RecoverOnceAsync(None));

        var run = await a.ReadAfterAsync("run_1", 2, None);
        var failed = JsonDocument.Parse(Encoding.UTF8.GetString(run.Events.Single().Frame.Bytes.Span).Split("data: ")[1]).RootElement;
        Assert.Equal((3L, "run.failed", true), (run.Events[0].Sequence, failed.GetProperty("event").GetString(), run.Completed));
        Assert.DoesNotContain("replica-a", failed.GetProperty("error").GetProperty("message").GetString());
        var response = await a.ReadAfterAsync("resp_1", 3, None);
        Assert.Equal((4L, "response.failed"), (response.Events.Single().Sequence, response.Events[0].Name));
        Assert.Contains("\"sequence_number\":3", Encoding.UTF8.GetString(response.Events[0].Frame.Bytes.Span));
        var record = (await background.GetAsync("resp_1", None))!;
        Assert.Equal("failed", record.Status);
        Assert.Contains("stopped responding", record.ResponseJson);

        Assert.False(await a.WriteAsync(Row("run_1", "completed", backend.Time.GetUtcNow().ToUnixTimeMilliseconds()), writeState: true, [Event(3, "run.completed")], None));
        Assert.False(await a.WriteAsync(Row("run_1"), writeState: false, Events(3, 4), None));
        Assert.Equal("failed", (await a.FindAsync("run_1", None))!.State);
        Assert.Equal("run.failed", (await a.ReadAfterAsync("run_1", 2, None)).Events.Single().Name);
    }

    [PostgresFact]
    public async Task Runs_finished_before_the_cutoff_go_with_their_events_and_unfinished_ones_stay()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var store = new PostgresRunStore(backend.Database);
        await store.WriteAsync(Row("run_old", "completed", 5_000), writeState: true, Events(1, 2), None);
        await store.WriteAsync(Row("run_new", "completed", 9_000), writeState: true, Events(1, 2), None);
        await store.WriteAsync(Row("run_open"), writeState: true, Events(1, 2), None);

        Assert.Equal(1, await store.DeleteFinishedAsync(before: 6_000, None));

        Assert.Null(await store.FindAsync("run_old", None));
        await using var connection = await backend.Database.OpenConnectionAsync(None);
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM run_events WHERE run_id = 'run_old';"));
        Assert.NotNull(await store.FindAsync("run_new", None));
        Assert.NotNull(await store.FindAsync("run_open", None));
    }

    [PostgresFact]
    public async Task The_sweep_deletes_runs_finished_longer_than_the_retention_ago()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var store = new PostgresRunStore(backend.Database);
        var now = backend.Time.GetUtcNow().ToUnixTimeMilliseconds();
        await store.WriteAsync(Row("run_1", "completed", now), writeState: true, Events(1, 1), None);
        var sweep = Recovery(store, "replica-b", backend, new ApiServerOptions { RunRetentionSeconds = 60 });

        backend.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, await sweep.DeleteExpiredAsync(None));
        backend.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, await sweep.DeleteExpiredAsync(None));
        Assert.Null(await store.FindAsync("run_1", None));
    }

    private static PostgresRunRecovery Recovery(PostgresRunStore store, string replicaId, StoreBackend backend, ApiServerOptions? options = null) =>
        new(store, backend.Jobs(replicaId: replicaId), new ReplicaIdentity(replicaId),
            new PostgresReplicaHeartbeat(backend.Database, new ReplicaIdentity(replicaId), backend.Time, Options.Create(new DatabaseOptions()), NullLogger<PostgresReplicaHeartbeat>.Instance),
            Options.Create(new DatabaseOptions()), Options.Create(options ?? new ApiServerOptions()), backend.Time, NullLogger<PostgresRunRecovery>.Instance);
}
