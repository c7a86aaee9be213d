using System.Net;
using System.Text.Json;
using ApiServer.Agent.Tools;
using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Responses.Background;
using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Mcp;
using ApiServer.Tests.Responses.Background;
using ApiServer.Tests.Runs;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ApiServer.Tests.Data;

/// <summary>
/// Two real replicas sharing one database: a run held by replica a is stopped, approved, denied and cancelled through replica
/// b (the bus, its listener and both replicas' endpoints are real; only b's run directory is a stand-in that reads a's registry).
/// </summary>
public sealed class PostgresRunCommandTests
{
    /// <summary>Two replicas, and a run on a whose tool blocks until the test ends: a holder the tests can make unresponsive.</summary>
    private static async Task<(Pair Pair, string RunId, BlockingTool Tool, ReplyTimeoutClock Clock)> StartHeldRunAsync()
    {
        var clock = new ReplyTimeoutClock();
        var tool = new BlockingTool();
        var pair = await StartPairAsync(tool, clock);
        try
        {
            var (runId, _) = await pair.A.Client.StartRunAsync(new { input = "/tool block {}" });
            await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
            return (pair, runId, tool, clock);
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }
    }

    private static async Task<Pair> StartPairAsync(IAgentTool tool,
        ReplyTimeoutClock? clock = null, IReadOnlyDictionary<string, string?>? settings = null, Func<TestDatabase, string>? holderUrl = null)
    {
        var database = await TestDatabase.CreateAsync();
        var values = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>()) { ["API_SERVER_DATABASE_URL"] = database.Url() };
        var holderValues = new Dictionary<string, string?>(values) { ["API_SERVER_DATABASE_URL"] = holderUrl?.Invoke(database) ?? database.Url() };
        var a = await TestServer.StartAsync(holderValues, services: s => s.AddSingleton(tool));
        var b = await TestServer.StartAsync(values, services: s =>
        {
            s.AddSingleton<IRunDirectory>(new HolderDirectory(a));
            if (clock is not null)
                s.AddSingleton<TimeProvider>(clock);
        });
        return new Pair(a, b, database);
    }

    private static Task<HttpResponseMessage> AnswerAsync(TestServer server, string runId, object answer) =>
        server.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(JsonSerializer.Serialize(answer)));

    /// <summary>A run on <paramref name="holder"/> waiting for its approval, and its event stream after approval.request.</summary>
    private static async Task<(string RunId, EventSubscriber Events, string ApprovalId)> WaitingForApprovalAsync(TestServer holder)
    {
        var (runId, _) = await holder.Client.StartRunAsync(new { input = "/tool gated {}" });
        var events = await EventSubscriber.OpenAsync(holder.Client, runId);
        return (runId, events, (await events.WaitForAsync("approval.request")).Data.GetProperty("approval_id").GetString()!);
    }

    [PostgresFact]
    public async Task A_run_held_by_one_replica_is_stopped_through_another_and_a_second_stop_is_409_there_too()
    {
        var tool = new BlockingTool();
        await using var pair = await StartPairAsync(tool);
        var (a, b) = (pair.A, pair.B);
        var (runId, _) = await a.Client.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using var stop = await b.Client.PostAsync($"/v1/runs/{runId}/stop", null);

        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        var body = await stop.ReadJsonAsync();
        Assert.Equal((runId, "stopping"), (body.GetProperty("run_id").GetString(), body.GetProperty("status").GetString()));
        await tool.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("run.cancelled", (await a.Client.ReadAllEventsAsync(runId))[^1].Name);
        await b.Client.PostAsync($"/v1/runs/{runId}/stop", null).AssertErrorAsync(409, "run_not_active");
        await b.Client.PostAsync("/v1/runs/run_nope/stop", null).AssertErrorAsync(404, "run_not_found", "run_id");
    }

    [PostgresFact]
    public async Task An_approval_is_answered_through_another_replica_and_its_errors_are_the_holders_own()
    {
        await using var pair = await StartPairAsync(new McpApprovalTests.GatedTool());
        var (a, b) = (pair.A, pair.B);
        var (runId, events, approvalId) = await WaitingForApprovalAsync(a);
        await using var _ = events;

        using var localUnknown = await AnswerAsync(a, runId, new { approval_id = "apr_nope", choice = "once" });
        using var remoteUnknown = await AnswerAsync(b, runId, new { approval_id = "apr_nope", choice = "once" });
        var unknown = await remoteUnknown.AssertErrorAsync(404, "approval_not_found", "approval_id");
        Assert.Equal((await localUnknown.ReadJsonAsync()).GetProperty("error").GetRawText(), unknown.GetRawText());
        await AnswerAsync(b, runId, new { approval_id = approvalId, choice = "maybe" }).AssertErrorAsync(400, "invalid_value", "choice");

        using var answered = await AnswerAsync(b, runId, new { approval_id = approvalId, choice = "once" });

        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        var body = await answered.ReadJsonAsync();
        Assert.Equal((runId, approvalId, "once"),
            (body.GetProperty("run_id").GetString(), body.GetProperty("approval_id").GetString(), body.GetProperty("choice").GetString()));
        var rest = await events.ReadToEndAsync();
        Assert.True(rest.Single(e => e.Name == "approval.responded").Data.GetProperty("approved").GetBoolean());
        Assert.Contains(rest, e => e.Name == "tool.completed");
        Assert.Equal("run.completed", rest[^1].Name);
        await AnswerAsync(b, runId, new { approval_id = approvalId, choice = "once" }).AssertErrorAsync(409, "run_not_active", "run_id");
    }

    [PostgresFact]
    public async Task A_denial_through_another_replica_reaches_the_run_with_its_reason()
    {
        await using var pair = await StartPairAsync(new McpApprovalTests.GatedTool());
        var (a, b) = (pair.A, pair.B);
        var (runId, events, approvalId) = await WaitingForApprovalAsync(a);
        await using var _ = events;

        using var denied = await AnswerAsync(b, runId, new { approval_id = approvalId, choice = "deny", reason = "not today" });

        Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        var rest = await events.ReadToEndAsync();
        var responded = rest.Single(e => e.Name == "approval.responded").Data;
        Assert.Equal((false, "deny", "not today"),
            (responded.GetProperty("approved").GetBoolean(), responded.GetProperty("choice").GetString(), responded.GetProperty("reason").GetString()));
        Assert.DoesNotContain(rest, e => e.Name == "tool.completed");
        Assert.Equal("run.completed", rest[^1].Name);
    }

    [PostgresFact]
    public async Task A_background_response_is_cancelled_through_another_replica_which_answers_the_cancelled_response()
    {
        var tool = new BlockingTool();
        await using var pair = await StartPairAsync(tool);
        var (a, b) = (pair.A, pair.B);
        var id = (await a.Client.CreateBackgroundAsync(new { input = "/tool block {}" }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using var cancel = await b.Client.PostAsync($"/v1/responses/{id}/cancel", null);

        var body = await cancel.ReadJsonAsync();
        Assert.True(cancel.StatusCode == HttpStatusCode.OK, body.GetRawText());
        Assert.Equal((id, "cancelled"), (body.GetProperty("id").GetString(), body.GetProperty("status").GetString()));
        await tool.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("cancelled", (await a.Client.GetResponseAsync(id))["status"]!.GetValue<string>());
        // Ended now: cancelling it again, through either replica, answers it unchanged.
        using var again = await b.Client.PostAsync($"/v1/responses/{id}/cancel", null);
        Assert.Equal("cancelled", (await again.ReadJsonAsync()).GetProperty("status").GetString());
    }

    [PostgresFact]
    public async Task A_holder_that_never_answers_is_a_503_with_Retry_After_once_the_reply_timeout_passes()
    {
        var (pair, runId, tool, clock) = await StartHeldRunAsync();
        await using var _ = pair;
        var (a, b, database) = (pair.A, pair.B, pair.Database);
        // The holder still runs it but hears nothing any more: to b it is a replica that died or lost the database.
        await a.Service<PostgresRunCommandBus>().StopAsync(CancellationToken.None);

        var stopping = b.Client.PostAsync($"/v1/runs/{runId}/stop", null);
        (await clock.Armed.Task.WaitAsync(TimeSpan.FromSeconds(30)))();
        using var stop = await stopping;

        await stop.AssertErrorAsync(503, "replica_unavailable");
        Assert.Equal(TimeSpan.FromSeconds(RunCoordinator.RetryAfterSeconds), stop.Headers.RetryAfter?.Delta);
        Assert.False(tool.Cancelled.Task.IsCompleted);
        // Withdrawn: a holder that listens again later never applies a command its asker gave up on.
        await using var connection = new NpgsqlConnection(database.Settings.ConnectionString);
        Assert.Equal(0, await connection.ExecuteScalarAsync<int>($"SELECT count(*) FROM {PostgresDatabase.DefaultSchema}.run_commands;"));
    }

    [PostgresFact]
    public async Task A_holder_whose_heartbeat_timed_out_is_a_503_at_once_and_no_command_is_left_for_it()
    {
        var (pair, runId, tool, clock) = await StartHeldRunAsync();
        await using var _ = pair;
        var (a, b, database) = (pair.A, pair.B, pair.Database);
        // a stops beating (as a replica that died would) and its last beat is older than the replica timeout.
        await a.Service<PostgresReplicaHeartbeat>().StopAsync(CancellationToken.None);
        await using var connection = new NpgsqlConnection(database.Settings.ConnectionString);
        await connection.ExecuteAsync($"UPDATE {PostgresDatabase.DefaultSchema}.replicas SET heartbeat_at = 0 WHERE id = @id;",
            new { id = a.Service<ReplicaIdentity>().Id });

        using var stop = await b.Client.PostAsync($"/v1/runs/{runId}/stop", null);

        await stop.AssertErrorAsync(503, "replica_unavailable");
        Assert.False(clock.Armed.Task.IsCompleted); // answered without waiting for a reply
        Assert.False(tool.Cancelled.Task.IsCompleted);
        Assert.Equal(0, await connection.ExecuteScalarAsync<int>($"SELECT count(*) FROM {PostgresDatabase.DefaultSchema}.run_commands;"));
    }

    [PostgresFact]
    public async Task The_holder_listens_again_after_losing_its_database_connections_and_applies_the_command_it_missed()
    {
        var tool = new BlockingTool();
        await using var cutter = new TcpCutter(TestPostgres.Settings.Host!, TestPostgres.Settings.Port);
        await using var pair = await StartPairAsync(tool, holderUrl: db => db.Url(cutter.Port));
        var (a, b) = (pair.A, pair.B);
        var (runId, _) = await a.Client.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Every connection of the holder dies, its listener's too; the stop is sent before it can have listened again.
        await cutter.CutAsync();
        cutter.Restore();
        using var stop = await b.Client.PostAsync($"/v1/runs/{runId}/stop", null);

        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        await tool.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [PostgresFact]
    public async Task Another_owners_run_on_another_replica_is_answered_as_unknown()
    {
        var keys = Access.AccessKit.WriteKeysFile(Access.AccessKit.File(
            Access.AccessKit.Entry("alice", Access.AccessKit.AliceKey, "runs"), Access.AccessKit.Entry("bob", Access.AccessKit.BobKey, "runs")));
        var tool = new BlockingTool();
        await using var pair = await StartPairAsync(tool, settings: new Dictionary<string, string?> { ["API_SERVER_KEYS_FILE"] = keys });
        var (a, b) = (pair.A, pair.B);
        using var alice = a.AuthorizedClient(Access.AccessKit.AliceKey);
        var (runId, _) = await alice.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using var bob = b.AuthorizedClient(Access.AccessKit.BobKey);
        await bob.PostAsync($"/v1/runs/{runId}/stop", null).AssertErrorAsync(404, "run_not_found", "run_id");
        await bob.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body("""{"approval_id":"apr_x","choice":"once"}"""))
            .AssertErrorAsync(404, "run_not_found", "run_id");

        using var aliceOnB = b.AuthorizedClient(Access.AccessKit.AliceKey);
        using var stop = await aliceOnB.PostAsync($"/v1/runs/{runId}/stop", null);
        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        await tool.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>The two replicas and their database, stopped and dropped in that order.</summary>
    private sealed record Pair(TestServer A, TestServer B, TestDatabase Database) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await B.DisposeAsync();
            await A.DisposeAsync();
            await Database.DisposeAsync();
        }
    }

    /// <summary>Replica b's stand-in for the shared run directory: a's runs, as a would record them.</summary>
    private sealed class HolderDirectory(TestServer holder) : IRunDirectory
    {
        public Task<RunRecord?> FindAsync(string id, CancellationToken cancellationToken)
        {
            if (holder.Service<IRunRegistry>().Get(id) is not { } run)
                return Task.FromResult<RunRecord?>(null);
            var snapshot = run.ResponseSnapshot() is { } response ? BackgroundResponses.Serialize(response) : "{}";
            return Task.FromResult<RunRecord?>(new RunRecord(run.Id, run.Spec.Owner, holder.Service<ReplicaIdentity>().Id, run.Spec.Background is not null,
                run.State.ToWire(), snapshot));
        }
    }

    /// <summary>The real clock, except that the bus's reply timeout fires when the test says (<see cref="Armed"/>), not after 15 s.</summary>
    private sealed class ReplyTimeoutClock : TimeProvider
    {
        public TaskCompletionSource<Action> Armed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime != PostgresRunCommandBus.ReplyTimeout || period != Timeout.InfiniteTimeSpan)
                return base.CreateTimer(callback, state, dueTime, period);
            Armed.TrySetResult(() => callback(state));
            return base.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }
}
