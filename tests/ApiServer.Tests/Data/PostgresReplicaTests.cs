using ApiServer.Access;
using ApiServer.Configuration;
using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Idempotency;
using ApiServer.Jobs;
using ApiServer.Tests.Data.Contracts;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses.Store;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static ApiServer.Tests.Data.Contracts.IdempotencyStoreContractTests;

namespace ApiServer.Tests.Data;

/// <summary>
/// What only a shared database can promise: several processes (each its own connection pool and stores, as replicas are)
/// agree on every claim, and see each other's writes at once.
/// </summary>
public sealed class PostgresReplicaTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [PostgresFact]
    public async Task The_PostgreSQL_tests_have_a_database()
    {
        await using var database = await TestPostgres.NewDatabaseAsync();
        try
        {
            await using var connection = await database.OpenConnectionAsync(None);
            var applied = await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM schema_migrations;");
            Assert.Equal(PostgresSchema.Migrations.Count, applied);
        }
        finally
        {
            await database.DropSchemaAsync(None);
        }
    }

    [PostgresFact]
    public async Task Replicas_starting_together_migrate_the_schema_once()
    {
        var schema = TestPostgres.NewSchemaName();
        var replicas = Enumerable.Range(0, 3).Select(_ => PostgresDatabase.Create(TestPostgres.Settings, schema)).ToList();
        try
        {
            await Task.WhenAll(replicas.Select(r => r.MigrateAsync(None)));
            await replicas[0].MigrateAsync(None); // and again later: nothing to do

            await using var connection = await replicas[0].OpenConnectionAsync(None);
            var versions = (await connection.QueryAsync<int>("SELECT version FROM schema_migrations ORDER BY version;")).ToList();
            Assert.Equal(Enumerable.Range(1, PostgresSchema.Migrations.Count), versions);
        }
        finally
        {
            await replicas[0].DropSchemaAsync(None);
            foreach (var replica in replicas)
                await replica.DisposeAsync();
        }
    }

    [PostgresFact]
    public async Task A_response_deleted_through_one_replica_is_gone_on_another_that_cached_its_chain()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var a = backend.Responses();
        var b = backend.Responses(replica: await backend.OpenReplicaAsync());
        await a.PutAsync(StoreTestKit.Simple("r1"), None);
        await b.PutAsync(StoreTestKit.Simple("r2", "r1"), None);
        Assert.Equal(4, (await a.GetChainMessagesAsync("r2", Owner.Anonymous, None))!.Count); // now cached on a

        Assert.True(await b.DeleteAsync("r2", Owner.Anonymous, None));

        Assert.Null(await a.GetChainMessagesAsync("r2", Owner.Anonymous, None));
        Assert.Null(await a.GetAsync("r2", Owner.Anonymous, None));
        Assert.Equal(1, await a.CountAsync(None));
    }

    private static PostgresIdempotencyStore Idempotency(PostgresDatabase database, TimeProvider time, TimeSpan? lease = null) =>
        new(database, Options.Create(new ApiServerOptions()), time, NullLogger.Instance, lease, pollInterval: TimeSpan.FromMilliseconds(20));

    [PostgresFact]
    public async Task A_duplicate_on_another_replica_waits_for_the_first_and_replays_its_outcome()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var time = new ShiftableTimeProvider();
        await using var a = Idempotency(backend.Database, time);
        await using var b = Idempotency(await backend.OpenReplicaAsync(), time);
        var entry = await ClaimAsync(a, "k1");

        var waiting = Claim(b, "k1");
        var reused = await Claim(b, "k1", "another body"); // a different body is refused at once, running or not
        await FinishAsync(a, entry, """{"answer":42}""");
        var duplicate = await waiting.WaitAsync(Patience);

        Assert.Equal(ClaimOutcome.Reused, reused.Outcome);
        Assert.Equal(ClaimOutcome.Duplicate, duplicate.Outcome);
        Assert.Equal("""{"answer":42}""", await ReadBodyAsync(b, duplicate.Stored!));
    }

    [PostgresFact]
    public async Task A_duplicate_following_a_local_wait_for_another_replica_claims_again_and_replays_the_first_outcome()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var time = new ShiftableTimeProvider();
        await using var a = Idempotency(backend.Database, time);
        await using var b = Idempotency(await backend.OpenReplicaAsync(), time);
        var entry = await ClaimAsync(a, "k1");

        var waiting = Claim(b, "k1"); // waits in b for a's outcome
        var follower = await Claim(b, "k1"); // follows that wait in b's memory, as a third duplicate would
        Assert.Equal(ClaimOutcome.Duplicate, follower.Outcome);
        var abandoned = follower.Running!.WaitAbandonedAsync(None);
        await FinishAsync(a, entry, """{"answer":42}""");

        Assert.Equal(ClaimOutcome.Duplicate, (await waiting.WaitAsync(Patience)).Outcome);
        // The wait never ran the request, so its follower is sent back to claim, not told there is nothing to replay.
        Assert.True(await abandoned.WaitAsync(Patience));
        var again = await Claim(b, "k1");
        Assert.Equal(ClaimOutcome.Duplicate, again.Outcome);
        Assert.Equal("""{"answer":42}""", await ReadBodyAsync(b, again.Stored!));
    }

    [PostgresFact]
    public async Task A_key_held_by_a_replica_that_died_is_released_after_its_lease_and_runs_again()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var time = new ShiftableTimeProvider();
        var lease = TimeSpan.FromMinutes(5);
        var a = Idempotency(backend.Database, time, lease);
        await ClaimAsync(a, "k1");
        await a.DisposeAsync(); // dies: no finish, no more lease renewals
        await using var b = Idempotency(await backend.OpenReplicaAsync(), time, lease);

        var waiting = Claim(b, "k1");
        Assert.False(waiting.IsCompleted);
        time.Advance(lease + TimeSpan.FromSeconds(1));
        var claim = await waiting.WaitAsync(Patience);

        Assert.Equal(ClaimOutcome.Claimed, claim.Outcome); // runs again: a dead holder's request is never replayed
    }

    [PostgresFact]
    public async Task A_claim_whose_finish_could_not_be_written_lapses_while_its_replica_renews_its_other_claims()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var lease = TimeSpan.FromMinutes(5);
        await using var a = Idempotency(backend.Database, backend.Time, lease);
        await using (var connection = await backend.Database.OpenConnectionAsync(None))
        {
            // The finish of key "orphan" fails in the database, as a write during an outage would.
            await connection.ExecuteAsync("""
                CREATE FUNCTION refuse_orphan() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '08006'; END $$;
                CREATE TRIGGER refuse_orphan BEFORE UPDATE ON idempotency_records FOR EACH ROW
                WHEN (OLD.key = 'orphan' AND NEW.state = 'finished') EXECUTE FUNCTION refuse_orphan();
                """);
        }
        var busy = await ClaimAsync(a, "busy");
        await FinishAsync(a, await ClaimAsync(a, "orphan"), "{}"); // logged, and the row stays 'running'

        // a keeps renewing "busy", which still runs, for longer than a lease; "orphan" is no longer a's to renew.
        for (var i = 0; i < 4; i++)
        {
            backend.Time.Advance(lease / 3);
            await a.LastRenewal;
        }
        await using var b = Idempotency(await backend.OpenReplicaAsync(), backend.Time, lease);

        Assert.Equal(ClaimOutcome.Claimed, (await Claim(b, "orphan").WaitAsync(Patience)).Outcome); // runs again, not held forever
        var duplicate = Claim(b, "busy");
        Assert.False(duplicate.IsCompleted); // the live claim still holds its key
        await FinishAsync(a, busy, "{}");
        backend.Time.Advance(b.PollInterval);
        Assert.Equal(ClaimOutcome.Duplicate, (await duplicate.WaitAsync(Patience)).Outcome);
    }

    [PostgresFact]
    public async Task A_live_holder_keeps_its_key_past_the_lease_by_renewing_it()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var lease = TimeSpan.FromMinutes(5);
        await using var a = Idempotency(backend.Database, backend.Time, lease);
        // b looks again on real timers (its clock is behind a's fake one, so it sees a's lease as live throughout).
        await using var b = Idempotency(await backend.OpenReplicaAsync(), new ShiftableTimeProvider(), lease);
        var entry = await ClaimAsync(a, "k1");

        // FakeTimeProvider runs a's renewal timer as time passes: twice per lease, so the key never lapses.
        for (var i = 0; i < 6; i++)
        {
            backend.Time.Advance(lease / 3);
            await a.LastRenewal;
        }
        await using (var connection = await backend.Database.OpenConnectionAsync(None))
        {
            var leaseUntil = await connection.ExecuteScalarAsync<long>("SELECT lease_until FROM idempotency_records;");
            var now = backend.Time.GetUtcNow().ToUnixTimeMilliseconds();
            Assert.True(leaseUntil > now, "the lease was renewed while the request ran");
        }
        var waiting = Claim(b, "k1");
        await FinishAsync(a, entry, "{}");
        Assert.Equal(ClaimOutcome.Duplicate, (await waiting.WaitAsync(Patience)).Outcome);
    }

    [PostgresFact]
    public async Task Three_replicas_claiming_the_same_firing_fire_it_exactly_once()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var now = backend.Time.GetUtcNow();
        var job = JobStoreContractTests.Job("eeeeeeeeeeee", now);
        var stores = new[] { backend.Jobs(replicaId: "r1"), backend.Jobs(replica: await backend.OpenReplicaAsync(), replicaId: "r2"),
            backend.Jobs(replica: await backend.OpenReplicaAsync(), replicaId: "r3") };
        await stores[0].InsertAsync(job, None);

        var claims = await Task.WhenAll(stores.Select(s => s.ClaimAsync(JobStoreContractTests.Due(job, now), None)));

        Assert.Single(claims, c => c is not null);
        Assert.Single(await stores[1].FiringsAsync(job.Id, null, 10, None));
        Assert.Equal(1, (await stores[2].GetAsync(job.Id, Owner.Anonymous, None))!.RunCount);
    }

    [PostgresFact]
    public async Task Recovery_leaves_a_live_replicas_firing_alone_and_fails_it_once_its_heartbeat_stops()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var now = backend.Time.GetUtcNow();
        var job = JobStoreContractTests.Job("ffffffffffff", now);
        var live = backend.Jobs(replicaId: "replica-live");
        await live.InsertAsync(job, None);
        await using var heartbeat = new PostgresReplicaHeartbeat(backend.Database, new ReplicaIdentity("replica-live"), backend.Time,
            Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()),
            NullLogger<PostgresReplicaHeartbeat>.Instance);
        await heartbeat.StartAsync(None);
        await live.ClaimAsync(JobStoreContractTests.Due(job, now), None);
        var starting = backend.Jobs(replica: await backend.OpenReplicaAsync(), replicaId: "replica-new");

        Assert.Equal(0, await starting.RecoverInterruptedAsync(now, None));

        await heartbeat.StopAsync(None); // the live replica dies
        await backend.AgeHeartbeatAsync("replica-live", PostgresReplicaHeartbeat.DefaultTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await starting.RecoverInterruptedAsync(backend.Time.GetUtcNow(), None));
    }

    [PostgresFact]
    public async Task The_periodic_sweep_of_a_running_replica_fails_a_firing_whose_replica_stopped_beating()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        var now = backend.Time.GetUtcNow();
        var job = JobStoreContractTests.Job("eeeeeeeeeeee", now);
        var dying = backend.Jobs(replicaId: "replica-dying");
        await dying.InsertAsync(job, None);
        await using var heartbeat = new PostgresReplicaHeartbeat(backend.Database, new ReplicaIdentity("replica-dying"), backend.Time,
            Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()), NullLogger<PostgresReplicaHeartbeat>.Instance);
        await heartbeat.StartAsync(None);
        await dying.ClaimAsync(JobStoreContractTests.Due(job, now), None);
        var survivorDatabase = await backend.OpenReplicaAsync();
        var survivor = new PostgresRunRecovery(new PostgresRunStore(survivorDatabase), backend.Jobs(replica: survivorDatabase, replicaId: "replica-survivor"),
            new ReplicaIdentity("replica-survivor"), new PostgresReplicaHeartbeat(survivorDatabase, new ReplicaIdentity("replica-survivor"), backend.Time,
                Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()), NullLogger<PostgresReplicaHeartbeat>.Instance),
            Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()),
            Microsoft.Extensions.Options.Options.Create(new ApiServerOptions()), backend.Time, NullLogger<PostgresRunRecovery>.Instance);

        await survivor.SweepOnceAsync(None);
        Assert.Equal(FiringStatus.Running, (await dying.FiringsAsync(job.Id, null, 10, None)).Single().Status); // still beating

        await heartbeat.StopAsync(None);
        await backend.AgeHeartbeatAsync("replica-dying", PostgresReplicaHeartbeat.DefaultTimeout + TimeSpan.FromSeconds(1));
        await survivor.SweepOnceAsync(None);

        var firing = (await dying.FiringsAsync(job.Id, null, 10, None)).Single();
        Assert.Equal(FiringStatus.Failed, firing.Status);
        Assert.Equal(SqliteJobStore.InterruptedError, firing.Error);
    }
}
