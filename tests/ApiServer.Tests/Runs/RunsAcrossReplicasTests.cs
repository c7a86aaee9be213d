using System.Net;
using ApiServer.Agent.Tools;
using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Runs;
using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses.Background;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ApiServer.Tests.Runs;

/// <summary>
/// Two replicas in one process sharing one PostgreSQL database: a run (or background response) started on replica A is read,
/// streamed live and resumed through replica B with the same bytes A streams, and B fails it when A stops beating.
/// </summary>
public sealed class RunsAcrossReplicasTests
{
    private const string BlockingInput = "/tool block {}";

    internal static async Task<TestServer> StartAsync(string url, BlockingTool? tool = null, string replicaTimeoutSeconds = "30")
    {
        var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_DATABASE_URL"] = url,
            ["API_SERVER_REPLICA_TIMEOUT_SECONDS"] = replicaTimeoutSeconds,
        }, services: tool is null ? null : s => s.AddSingleton<IAgentTool>(tool));
        await server.Service<PostgresRunNotifications>().Listening.WaitAsync(TimeSpan.FromSeconds(30));
        return server;
    }

    [PostgresFact]
    public async Task A_run_started_on_one_replica_is_read_and_streamed_live_and_resumed_on_another_with_the_same_frames()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool);
        await using var b = await StartAsync(database.Url());

        var (runId, _) = await a.Client.StartRunAsync(new { input = BlockingInput });
        // The id is known on b as soon as a answered with it.
        Assert.Contains((await b.Client.GetStatusAsync(runId)).GetProperty("status").GetString(), new[] { "queued", "running" });
        await using (var live = await EventSubscriber.OpenAsync(b.Client, runId))
        {
            await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("tool.started", (await live.WaitForAsync("tool.started")).Name);
            Assert.Equal("running", (await b.Client.GetStatusAsync(runId)).GetProperty("status").GetString());

            tool.Release.SetResult();

            var events = await live.ReadToEndAsync();
            Assert.Equal("run.completed", events[^1].Name);
            Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        }

        Assert.Equal(await a.Client.ReadAllEventsTextAsync(runId), await b.Client.ReadAllEventsTextAsync(runId));
        Assert.Equal(await a.Client.ReadAllEventsTextAsync(runId, lastEventId: "2"), await b.Client.ReadAllEventsTextAsync(runId, lastEventId: "2"));
        Assert.Equal(await a.Client.ReadAllEventsTextAsync(runId, query: "?last_event_id=3"), await b.Client.ReadAllEventsTextAsync(runId, query: "?after=3"));
        Assert.EndsWith("\n\n: stream closed\n\n", await b.Client.ReadAllEventsTextAsync(runId, lastEventId: "2"));
        Assert.Equal((await a.Client.GetStatusAsync(runId)).GetRawText(), (await b.Client.GetStatusAsync(runId)).GetRawText());
        Assert.Equal(0, b.Service<PostgresRunNotifications>().Watched); // the streams of the ended run left nothing waiting
        await b.Client.GetAsync($"/v1/runs/run_{Guid.NewGuid():N}").AssertErrorAsync(404, "run_not_found", "run_id");
        await b.Client.GetAsync($"/v1/runs/{runId}/events?after=x").AssertErrorAsync(400, "invalid_value", "after");
    }

    [PostgresFact]
    public async Task A_background_response_running_on_one_replica_is_read_and_streamed_on_another_with_starting_after()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool);
        await using var b = await StartAsync(database.Url());

        var id = (await a.Client.CreateBackgroundAsync(new { model = "agent", input = BlockingInput }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains((await b.Client.GetResponseAsync(id))["status"]!.GetValue<string>(), new[] { "queued", "in_progress" });

        await using (var live = await EventReader.GetAsync(b.Client, id, "&starting_after=0"))
        {
            Assert.Equal(1, (await live.NextAsync())!.Sequence());
            tool.Release.SetResult();
            var events = await live.ReadToEndAsync();
            Assert.Equal("response.completed", events[^1].Type);
        }
        await a.WaitForEndAsync(id);

        Assert.Equal("completed", (await b.Client.GetResponseAsync(id))["status"]!.GetValue<string>());
        Assert.Equal(await RawStreamAsync(a, id, "&starting_after=2"), await RawStreamAsync(b, id, "&starting_after=2"));
        Assert.Equal(await RawStreamAsync(a, id, ""), await RawStreamAsync(b, id, ""));
    }

    [PostgresFact]
    public async Task When_a_replica_stops_beating_another_fails_its_run_and_live_subscribers_get_the_terminal_event()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        // A long timeout: neither replica beats or sweeps by itself during the test; the test ages a's heartbeat instead.
        await using var a = await StartAsync(database.Url(), tool, replicaTimeoutSeconds: "3600");
        await using var b = await StartAsync(database.Url(), replicaTimeoutSeconds: "3600");
        var recovery = b.Service<PostgresRunRecovery>();

        var (runId, _) = await a.Client.StartRunAsync(new { input = BlockingInput });
        await using var live = await EventSubscriber.OpenAsync(b.Client, runId);
        await live.WaitForAsync("tool.started");
        Assert.Equal(0, await recovery.RecoverOnceAsync(CancellationToken.None)); // a is alive: its run is left alone

        await AgeHeartbeatAsync(database, a.Service<ReplicaIdentity>().Id, TimeSpan.FromHours(2));
        Assert.Equal(1, await recovery.RecoverOnceAsync(CancellationToken.None));
        Assert.Equal(0, await recovery.RecoverOnceAsync(CancellationToken.None)); // claimed once

        var failed = await live.WaitForAsync("run.failed");
        Assert.Null(await live.NextAsync()); // then ": stream closed" and the end
        Assert.Contains("stopped responding", failed.Data.GetProperty("error").GetProperty("message").GetString());
        Assert.DoesNotContain(a.Service<ReplicaIdentity>().Id, failed.Data.GetProperty("error").GetProperty("message").GetString()); // its host name
        Assert.Equal(live.Received[^2].Id + 1, failed.Id);
        var status = await b.Client.GetStatusAsync(runId);
        Assert.Equal(("failed", "replica_unavailable"), (status.GetProperty("status").GetString(), status.GetProperty("error").GetProperty("code").GetString()));

        // a was not dead after all: its next write finds the run taken over, and a stops it too (its tool is cancelled,
        // never released), so it ends failed on a as well, and nothing a writes changes the run another replica ended.
        var held = a.Service<IRunRegistry>().Get(runId)!;
        held.Publish("test.after_takeover");
        await a.Service<PostgresRunJournal>().FlushDirtyAsync(CancellationToken.None);
        await held.Execution.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(tool.Cancelled.Task.IsCompleted);
        var local = held.Snapshot();
        Assert.Equal(("failed", "replica_unavailable"), (local.Status, local.Error?.Code));
        Assert.Equal("failed", (await b.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        Assert.Equal("run.failed", RunsTestKit.Parse(await b.Client.ReadAllEventsTextAsync(runId))[^1].Name);
    }

    [PostgresFact]
    public async Task Events_a_replica_logs_while_the_database_is_down_are_written_when_it_returns()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(cutter.Port), tool);
        await using var b = await StartAsync(database.Url());
        var (runId, _) = await a.Client.StartRunAsync(new { input = BlockingInput });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await cutter.CutAsync();
        tool.Release.SetResult();
        await a.Service<IRunRegistry>().Get(runId)!.Execution.WaitAsync(TimeSpan.FromSeconds(30));
        var local = await a.Client.ReadAllEventsTextAsync(runId);
        Assert.Contains("run.completed", local);
        Assert.NotEqual("completed", (await b.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        Assert.Equal(1, a.Service<PostgresRunJournal>().Pending);

        cutter.Restore();
        // The writer retries with backoff on its own; a subscriber on b sees the rest when it is written.
        Assert.Equal(local, await b.Client.ReadAllEventsTextAsync(runId));
        Assert.Equal("completed", (await b.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        Assert.Equal(0, a.Service<PostgresRunJournal>().Pending);
    }

    [PostgresFact]
    public async Task Another_owners_run_on_another_replica_is_answered_like_an_unknown_id()
    {
        await using var database = await TestDatabase.CreateAsync();
        var keys = Access.AccessKit.WriteKeysFile(Access.AccessKit.File(Access.AccessKit.Entry("alice", Access.AccessKit.AliceKey, "runs", "responses"),
            Access.AccessKit.Entry("bob", Access.AccessKit.BobKey, "runs", "responses")));
        var settings = new Dictionary<string, string?> { ["API_SERVER_DATABASE_URL"] = database.Url() };
        await using var a = await Access.AccessKit.StartAsync(keys, settings);
        await using var b = await Access.AccessKit.StartAsync(keys, settings);
        using var alice = a.AuthorizedClient(Access.AccessKit.AliceKey);
        using var aliceOnB = b.AuthorizedClient(Access.AccessKit.AliceKey);
        using var bobOnB = b.AuthorizedClient(Access.AccessKit.BobKey);
        var (runId, _) = await alice.StartRunAsync(new { input = "hello" });
        var responseId = (await alice.CreateBackgroundAsync(new { model = "agent", input = "hello" }))["id"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.OK, (await aliceOnB.GetAsync($"/v1/runs/{runId}")).StatusCode);
        foreach (var path in new[] { $"/v1/runs/{runId}", $"/v1/runs/{runId}/events" })
        {
            using var theirs = await bobOnB.GetAsync(path);
            using var unknown = await bobOnB.GetAsync(path.Replace(runId, "run_" + Guid.NewGuid().ToString("N")));
            Assert.Equal((HttpStatusCode.NotFound, HttpStatusCode.NotFound), (theirs.StatusCode, unknown.StatusCode));
        }
        // A run id is not a response id, and a background response is not a run, on either replica.
        Assert.Equal(HttpStatusCode.NotFound, (await aliceOnB.GetAsync($"/v1/runs/{responseId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bobOnB.GetAsync($"/v1/responses/{responseId}?stream=true")).StatusCode);
    }

    [PostgresFact]
    public async Task When_a_replica_stops_beating_its_background_response_fails_and_a_subscriber_elsewhere_gets_response_failed()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool, replicaTimeoutSeconds: "3600");
        await using var b = await StartAsync(database.Url(), replicaTimeoutSeconds: "3600");
        var id = (await a.Client.CreateBackgroundAsync(new { model = "agent", input = BlockingInput }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await using var live = await EventReader.GetAsync(b.Client, id);
        await live.WaitForAsync("response.created");

        await AgeHeartbeatAsync(database, a.Service<ReplicaIdentity>().Id, TimeSpan.FromHours(2));
        Assert.Equal(1, await b.Service<PostgresRunRecovery>().RecoverOnceAsync(CancellationToken.None));

        var failed = await live.WaitForAsync("response.failed");
        Assert.Null(await live.NextAsync());
        Assert.Equal(live.Received[^2].Sequence() + 1, failed.Sequence());
        Assert.Contains("stopped responding", failed.Data["response"]!["error"]!["message"]!.GetValue<string>());
        Assert.DoesNotContain(a.Service<ReplicaIdentity>().Id, failed.Data["response"]!["error"]!["message"]!.GetValue<string>());
        var read = await b.Client.GetResponseAsync(id);
        Assert.Equal(("failed", "server_error"), (read["status"]!.GetValue<string>(), read["error"]!["code"]!.GetValue<string>()));
        tool.Release.SetResult();
    }

    [PostgresFact]
    public async Task Deleting_a_background_response_that_runs_on_another_replica_is_refused_as_on_its_own()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool);
        await using var b = await StartAsync(database.Url());
        var id = (await a.Client.CreateBackgroundAsync(new { model = "agent", input = BlockingInput }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await a.Service<PostgresRunJournal>().FlushDirtyAsync(CancellationToken.None);

        using var onHolder = await a.Client.DeleteAsync($"/v1/responses/{id}");
        using var elsewhere = await b.Client.DeleteAsync($"/v1/responses/{id}");
        var refused = await onHolder.Content.ReadAsStringAsync();
        await elsewhere.AssertErrorAsync(400, "invalid_request", "response_id");
        Assert.Equal(refused, await elsewhere.Content.ReadAsStringAsync());
        Assert.Equal("in_progress", (await b.Client.GetResponseAsync(id))["status"]!.GetValue<string>());

        tool.Release.SetResult();
        await a.WaitForEndAsync(id);
        // Its end reaches the database after the run ends in a's memory: b answers as the database does.
        await Eventually.TrueAsync(async () => (await b.Client.GetResponseAsync(id))["status"]!.GetValue<string>() == "completed", "b to see the end");
        using var deleted = await b.Client.DeleteAsync($"/v1/responses/{id}");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        await b.Client.GetAsync($"/v1/responses/{id}").AssertErrorAsync(404, "response_not_found", "response_id");
    }

    [PostgresFact]
    public async Task A_run_whose_row_cannot_be_written_is_refused_with_503_and_stopped()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(cutter.Port), tool);

        await cutter.CutAsync();
        using var refused = await a.Client.PostRunAsync(new { input = BlockingInput });

        await refused.AssertErrorAsync(503, "database_unavailable");
        var registry = a.Service<IRunRegistry>();
        Assert.Equal(1, registry.Count); // it was admitted, then stopped: nobody got its id
        await Eventually.TrueAsync(() => registry.Active().Count == 0, "the refused run to have ended");
    }

    [PostgresFact]
    public async Task A_subscriber_keeps_following_through_its_replicas_lost_listening_connection()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var a = await StartAsync(database.Url(), tool);
        await using var b = await StartAsync(database.Url(cutter.Port));
        var (runId, _) = await a.Client.StartRunAsync(new { input = BlockingInput });
        await using var live = await EventSubscriber.OpenAsync(b.Client, runId);
        await live.WaitForAsync("tool.started");

        await cutter.CutAsync();
        tool.Release.SetResult();
        await a.Service<IRunRegistry>().Get(runId)!.Execution.WaitAsync(TimeSpan.FromSeconds(30));
        await a.Service<PostgresRunJournal>().FlushDirtyAsync(CancellationToken.None); // notified while b did not listen
        cutter.Restore();

        var events = await live.ReadToEndAsync();
        Assert.Equal("run.completed", events[^1].Name);
        Assert.Equal(RunsTestKit.Parse(await a.Client.ReadAllEventsTextAsync(runId)).Select(e => e.Id), events.Select(e => e.Id));
    }

    private static async Task<string> RawStreamAsync(TestServer server, string id, string query)
    {
        using var response = await server.Client.GetAsync($"/v1/responses/{id}?stream=true{query}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    internal static async Task AgeHeartbeatAsync(TestDatabase database, string replicaId, TimeSpan by)
    {
        await using var connection = new NpgsqlConnection(database.Settings.ConnectionString);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"UPDATE {PostgresDatabase.DefaultSchema}.replicas SET heartbeat_at = heartbeat_at - @by WHERE id = @replicaId;",
            new { by = (long)by.TotalMilliseconds, replicaId });
    }
}
