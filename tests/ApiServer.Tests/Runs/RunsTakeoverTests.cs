using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Runs;
using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses.Background;
using Dapper;
using Npgsql;

namespace ApiServer.Tests.Runs;

/// <summary>
/// A replica that was cut off from the database long enough for another to fail its run finds out when it reaches the
/// database again: from then on it answers for the run exactly as the database (and so every other replica) does, even when
/// it had already finished the run itself, and it never stores a Response for a run the database records as failed.
/// </summary>
public sealed class RunsTakeoverTests
{
    private const string BlockingInput = "/tool block {}";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static Task<TestServer> StartAsync(string url, BlockingTool? tool = null) =>
        // A long timeout: no replica beats or sweeps by itself during a test; the tests age a heartbeat and sweep instead.
        RunsAcrossReplicasTests.StartAsync(url, tool, replicaTimeoutSeconds: "3600");

    [PostgresFact]
    public async Task A_run_its_holder_finished_while_cut_off_and_another_replica_failed_reads_failed_on_both_replicas()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(cutter.Port), tool);
        await using var b = await StartAsync(database.Url());
        var (runId, _) = await a.Client.StartRunAsync(new { input = BlockingInput });
        await tool.Started.Task.WaitAsync(Patience);

        await cutter.CutAsync();
        tool.Release.SetResult();
        await a.Service<IRunRegistry>().Get(runId)!.Execution.WaitAsync(Patience);
        Assert.Equal("completed", (await a.Client.GetStatusAsync(runId)).GetProperty("status").GetString()); // only a knows that
        await RunsAcrossReplicasTests.AgeHeartbeatAsync(database, a.Service<ReplicaIdentity>().Id, TimeSpan.FromHours(2));
        Assert.Equal(1, await b.Service<PostgresRunRecovery>().RecoverOnceAsync(CancellationToken.None));

        cutter.Restore();
        // a's writer retries on its own; its terminal write finds the run ended by b, and a lets the database's record stand.
        await Eventually.TrueAsync(() => a.Service<IRunRegistry>().Get(runId) is null, "a to learn that b failed its run");
        var onA = await a.Client.GetStatusAsync(runId);
        Assert.Equal(("failed", "replica_unavailable"), (onA.GetProperty("status").GetString(), onA.GetProperty("error").GetProperty("code").GetString()));
        Assert.Equal((await b.Client.GetStatusAsync(runId)).GetRawText(), onA.GetRawText());
        Assert.Equal(await b.Client.ReadAllEventsTextAsync(runId), await a.Client.ReadAllEventsTextAsync(runId));
        Assert.Equal("run.failed", RunsTestKit.Parse(await a.Client.ReadAllEventsTextAsync(runId))[^1].Name);
    }

    [PostgresFact]
    public async Task A_holder_that_finishes_a_run_another_replica_failed_stores_no_Response_for_it()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool);
        await using var b = await StartAsync(database.Url());
        var (runId, _) = await a.Client.StartRunAsync(new { input = BlockingInput, store = true });
        await tool.Started.Task.WaitAsync(Patience);
        var held = a.Service<IRunRegistry>().Get(runId)!;
        await a.Service<PostgresRunJournal>().FlushDirtyAsync(CancellationToken.None);

        await RunsAcrossReplicasTests.AgeHeartbeatAsync(database, a.Service<ReplicaIdentity>().Id, TimeSpan.FromHours(2));
        Assert.Equal(1, await b.Service<PostgresRunRecovery>().RecoverOnceAsync(CancellationToken.None));
        tool.Release.SetResult();
        await held.Execution.WaitAsync(Patience);

        Assert.Equal("failed", held.Snapshot().Status);
        Assert.Null(held.Snapshot().ResponseId);
        Assert.Equal((await b.Client.GetStatusAsync(runId)).GetRawText(), (await a.Client.GetStatusAsync(runId)).GetRawText());
        await using var connection = new NpgsqlConnection(database.Settings.ConnectionString);
        Assert.Equal(0L, await connection.ExecuteScalarAsync<long>($"SELECT count(*) FROM {PostgresDatabase.DefaultSchema}.responses;"));
    }
    [PostgresFact]
    public async Task A_replica_starting_while_a_live_replicas_heartbeat_is_stale_leaves_its_work_to_the_steady_sweep()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool);
        var id = (await a.Client.CreateBackgroundAsync(new { model = "agent", input = BlockingInput }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(Patience);
        var replicaA = a.Service<ReplicaIdentity>().Id;
        await using var store = PostgresDatabase.Create(new NpgsqlConnectionStringBuilder(database.Settings.ConnectionString), PostgresDatabase.DefaultSchema);
        var jobs = new PostgresJobStore(store, 100, replicaA);
        var job = Data.Contracts.JobStoreContractTests.Job("eeeeeeeeeeee", DateTimeOffset.UtcNow); // next due in an hour: b does not fire it
        await jobs.InsertAsync(job, CancellationToken.None);
        await jobs.ClaimAsync(Data.Contracts.JobStoreContractTests.Due(job, DateTimeOffset.UtcNow), CancellationToken.None);

        // As right after a database outage: a is alive and at work, but its last beat is older than the timeout.
        await RunsAcrossReplicasTests.AgeHeartbeatAsync(database, replicaA, TimeSpan.FromHours(2));
        await using var b = await StartAsync(database.Url());

        // b's startup took nothing for gone; its sweep would wait until it has beaten steadily for a whole timeout.
        await using (var connection = new NpgsqlConnection(database.Settings.ConnectionString))
        {
            Assert.True(await connection.ExecuteScalarAsync<bool>(
                $"SELECT finished_at IS NULL FROM {PostgresDatabase.DefaultSchema}.background_responses WHERE id = @id;", new { id }));
        }
        Assert.Equal(ApiServer.Jobs.FiringStatus.Running, (await jobs.FiringsAsync(job.Id, null, 10, CancellationToken.None)).Single().Status);
        tool.Release.SetResult();
        await Eventually.TrueAsync(async () => (await b.Client.GetResponseAsync(id))["status"]!.GetValue<string>() == "completed", "the response to complete");
    }
}
