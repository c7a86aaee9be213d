using ApiServer.Configuration;
using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Jobs;
using ApiServer.Tests.Data.Contracts;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace ApiServer.Tests.Data;

/// <summary>
/// A database outage stops every replica's heartbeat at once: when it ends, no replica may take the others for dead before
/// they had their chance to beat again, or it fails work they are still doing.
/// </summary>
public sealed class PostgresOutageTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Timeout = PostgresReplicaHeartbeat.DefaultTimeout;

    [PostgresFact]
    public async Task After_an_outage_longer_than_the_timeout_a_replica_sweeps_only_once_it_has_beaten_steadily_for_a_timeout()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        await using var cutter = new TcpCutter(TestPostgres.Settings.Host!, TestPostgres.Settings.Port);
        await using var survivorDatabase = PostgresDatabase.Create(new NpgsqlConnectionStringBuilder(TestPostgres.Settings.ConnectionString) { Port = cutter.Port },
            backend.Database.Schema);
        var holder = Heartbeat(backend, backend.Database, "replica-holder");
        var survivorBeat = Heartbeat(backend, survivorDatabase, "replica-survivor");
        var survivor = new PostgresRunRecovery(new PostgresRunStore(survivorDatabase), backend.Jobs(replica: survivorDatabase, replicaId: "replica-survivor"),
            new ReplicaIdentity("replica-survivor"), survivorBeat, Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()),
            Microsoft.Extensions.Options.Options.Create(new ApiServerOptions()), backend.Time, NullLogger<PostgresRunRecovery>.Instance);
        var job = JobStoreContractTests.Job("dddddddddddd", backend.Time.GetUtcNow());
        var holderJobs = backend.Jobs(replicaId: "replica-holder");
        await holderJobs.InsertAsync(job, None);
        await holder.BeatAsync(None);
        await holderJobs.ClaimAsync(JobStoreContractTests.Due(job, backend.Time.GetUtcNow()), None);

        await survivorBeat.BeatAsync(None);
        Assert.False(await survivor.SweepIfSteadyAsync(None)); // just started: not steady for a timeout yet
        backend.Time.Advance(Timeout);
        await holder.BeatAsync(None);
        await survivorBeat.BeatAsync(None);
        Assert.True(await survivor.SweepIfSteadyAsync(None));
        Assert.Equal(FiringStatus.Running, await StatusAsync(holderJobs, job));

        // The outage: nobody beats for longer than the timeout (the survivor's attempt fails; the holder's are not even made).
        await cutter.CutAsync();
        backend.Time.Advance(Timeout / 3);
        await survivorBeat.BeatAsync(None);
        Assert.False(survivorBeat.SteadyFor(TimeSpan.Zero));
        backend.Time.Advance(Timeout);
        cutter.Restore();
        await BeatUntilSteadyAsync(survivorBeat);
        await ReconnectAsync(survivorDatabase);
        // Beats are stamped by the database's clock: the holder's last one is as old as the outage was long.
        await backend.AgeHeartbeatAsync("replica-holder", Timeout + TimeSpan.FromSeconds(1));

        // Every heartbeat is stale now, the holder's too, but the survivor has not been steady for a timeout: it leaves it.
        Assert.False(await survivor.SweepIfSteadyAsync(None));
        Assert.Equal(FiringStatus.Running, await StatusAsync(holderJobs, job));
        await holder.BeatAsync(None); // the holder's next beat, well within the timeout
        backend.Time.Advance(Timeout);
        await holder.BeatAsync(None);
        await survivorBeat.BeatAsync(None);
        Assert.True(await survivor.SweepIfSteadyAsync(None));
        Assert.Equal(FiringStatus.Running, await StatusAsync(holderJobs, job));

        // A holder that really stopped is still found: its firing fails at the first steady sweep after the timeout.
        backend.Time.Advance(Timeout / 3);
        await backend.AgeHeartbeatAsync("replica-holder", Timeout + TimeSpan.FromSeconds(1));
        await survivorBeat.BeatAsync(None);
        Assert.True(await survivor.SweepIfSteadyAsync(None));
        Assert.Equal(FiringStatus.Failed, await StatusAsync(holderJobs, job));
    }

    private static PostgresReplicaHeartbeat Heartbeat(StoreBackend backend, PostgresDatabase database, string id) =>
        new(database, new ReplicaIdentity(id), backend.Time, Microsoft.Extensions.Options.Options.Create(new DatabaseOptions()),
            NullLogger<PostgresReplicaHeartbeat>.Instance);

    private static async Task<string> StatusAsync(IJobStore jobs, JobRecord job) => (await jobs.FiringsAsync(job.Id, null, 10, None)).Single().Status;

    /// <summary>
    /// The heartbeat has a pool of its own: the stores' pool may still hold connections the cut broke, each failing one command
    /// (a sweep that meets one counts as the database being unreachable again). Those are spent here, as requests would.
    /// </summary>
    private static async Task ReconnectAsync(PostgresDatabase database)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                await using var connection = await database.OpenConnectionAsync(None);
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(None);
                return;
            }
            catch (NpgsqlException)
            {
                // a connection the cut broke: the pool drops it, and the next attempt takes another
            }
        }
        Assert.Fail("the stores' pool did not reconnect after the cut");
    }

    /// <summary>The first commands after the cut may still meet a pooled connection the cut broke; the next one reconnects.</summary>
    private static async Task BeatUntilSteadyAsync(PostgresReplicaHeartbeat heartbeat)
    {
        for (var attempt = 0; attempt < 5 && !heartbeat.SteadyFor(TimeSpan.Zero); attempt++)
            await heartbeat.BeatAsync(None);
        Assert.True(heartbeat.SteadyFor(TimeSpan.Zero));
    }
}
