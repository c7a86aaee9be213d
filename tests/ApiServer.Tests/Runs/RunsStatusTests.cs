using System.Text.Json;
using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Runs;

public sealed class RunsStatusTests
{
    [Fact]
    public async Task Get_CompletedRun_HasEveryFieldAndResult()
    {
        await using var server = await TestServer.StartAsync();
        var (runId, _) = await server.Client.StartRunAsync(new { input = "status please", store = false });
        await server.Client.ReadAllEventsAsync(runId);

        var status = await server.Client.GetStatusAsync(runId);

        Assert.Equal(runId, status.GetProperty("run_id").GetString());
        Assert.Equal("completed", status.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, status.GetProperty("session_id").ValueKind);
        var created = status.GetProperty("created_at").GetDouble();
        var started = status.GetProperty("started_at").GetDouble();
        var finished = status.GetProperty("finished_at").GetDouble();
        Assert.True(created <= started && started <= finished);
        Assert.Equal("echo: status please", status.GetProperty("output").GetString());
        Assert.True(status.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Null, status.GetProperty("error").ValueKind);
        Assert.Equal(JsonValueKind.Null, status.GetProperty("response_id").ValueKind);
    }

    [Fact]
    public async Task Start_XSessionIdHeader_HonouredInStatusAndEchoed()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.PostRunAsync(new { input = "hi" }, sessionHeader: "my-session.1");
        var runId = (await response.ReadJsonAsync()).GetProperty("run_id").GetString()!;

        Assert.Equal("my-session.1", response.Headers.GetValues("X-Session-Id").Single());
        Assert.Equal("my-session.1", (await server.Client.GetStatusAsync(runId)).GetProperty("session_id").GetString());
    }

    [Fact]
    public async Task Start_SessionIdInBody_HonouredInStatus()
    {
        await using var server = await TestServer.StartAsync();
        var (runId, _) = await server.Client.StartRunAsync(new { input = "hi", session_id = "body-session" });
        Assert.Equal("body-session", (await server.Client.GetStatusAsync(runId)).GetProperty("session_id").GetString());
    }

    [Fact]
    public async Task Get_UnknownRun_404RunNotFound()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.GetAsync("/v1/runs/run_0000");
        await response.AssertErrorAsync(404, "run_not_found");
    }

    [Fact]
    public async Task Runs_KeyConfiguredButNotSent_401AndKeyAccepted()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });

        using var refused = await server.Client.PostRunAsync(new { input = "hi" });
        await refused.AssertErrorAsync(401);
        using var authorized = server.AuthorizedClient();
        var (runId, _) = await authorized.StartRunAsync(new { input = "hi" });
        using var events = await server.Client.GetAsync($"/v1/runs/{runId}/events");
        await events.AssertErrorAsync(401);
        Assert.Equal("run.completed", (await authorized.ReadAllEventsAsync(runId))[^1].Name);
    }

    [Fact]
    public async Task Get_AfterRetention_RunIsSweptAnd404()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_RUN_RETENTION_SECONDS"] = "60" },
            services: s => s.AddSingleton<TimeProvider>(clock));
        var (runId, _) = await server.Client.StartRunAsync(new { input = "short-lived" });
        await server.Client.ReadAllEventsAsync(runId);

        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("completed", (await server.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        Assert.Equal("run.completed", (await server.Client.ReadAllEventsAsync(runId))[^1].Name);

        clock.Advance(TimeSpan.FromSeconds(1));
        using var response = await server.Client.GetAsync($"/v1/runs/{runId}");
        await response.AssertErrorAsync(404, "run_not_found");
    }

    [Fact]
    public async Task Sweep_FinishedPastRetention_RemovesOnlyThose()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_RUN_RETENTION_SECONDS"] = "60" },
            services: s => s.AddSingleton<TimeProvider>(clock));
        var sweeper = server.Service<RunLifetimeService>();
        var registry = server.Service<IRunRegistry>();
        var (old, _) = await server.Client.StartRunAsync(new { input = "old" });
        await server.Client.ReadAllEventsAsync(old);
        clock.Advance(TimeSpan.FromSeconds(30));
        var (recent, _) = await server.Client.StartRunAsync(new { input = "recent" });
        await server.Client.ReadAllEventsAsync(recent);

        Assert.Equal(0, sweeper.SweepOnce());
        clock.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(1, sweeper.SweepOnce());
        Assert.Equal(1, registry.Count);
        Assert.Null(registry.Get(old));
        Assert.NotNull(registry.Get(recent));
    }
}
