using System.Net;
using ApiServer.Agent.Tools;
using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Runs;

public sealed class RunsStopTests
{
    [Fact]
    public async Task Stop_DuringTool_CancelsToolAndEmitsRunCancelled()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var (runId, _) = await server.Client.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using var stop = await server.Client.PostAsync($"/v1/runs/{runId}/stop", null);

        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        var body = await stop.ReadJsonAsync();
        Assert.Equal(runId, body.GetProperty("run_id").GetString());
        Assert.Equal("stopping", body.GetProperty("status").GetString());
        await tool.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var events = await server.Client.ReadAllEventsAsync(runId);
        Assert.Equal("run.cancelled", events[^1].Name);
        Assert.DoesNotContain(events, e => e.Name is "run.completed" or "run.failed");
        var status = await server.Client.GetStatusAsync(runId);
        Assert.Equal("cancelled", status.GetProperty("status").GetString());
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, status.GetProperty("finished_at").ValueKind);
    }

    [Fact]
    public async Task Stop_QueuedRun_RemovedFromQueueAndCancelledWithoutStarting()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var (first, _) = await server.Client.StartRunAsync(new { input = "/tool block {}", session_id = "s1" });
        var (second, secondStatus) = await server.Client.StartRunAsync(new { input = "second", session_id = "s1" });
        var (third, _) = await server.Client.StartRunAsync(new { input = "third", session_id = "s1" });
        Assert.Equal("queued", secondStatus);

        using var stop = await server.Client.PostAsync($"/v1/runs/{second}/stop", null);

        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        Assert.Equal("cancelled", (await server.Client.GetStatusAsync(second)).GetProperty("status").GetString());
        Assert.Equal(["run.queued", "run.cancelled"], (await server.Client.ReadAllEventsAsync(second)).Select(e => e.Name));
        Assert.Equal(1, server.Service<RunScheduler>().Queued);
        await server.Service<IRunRegistry>().Get(second)!.Execution.WaitAsync(TimeSpan.FromSeconds(30));

        tool.Release.SetResult();
        Assert.Equal("run.completed", (await server.Client.ReadAllEventsAsync(first))[^1].Name);
        var thirdEvents = await server.Client.ReadAllEventsAsync(third);
        Assert.Equal("run.completed", thirdEvents[^1].Name);
        Assert.Equal("echo: third", thirdEvents[^1].Data.GetProperty("output").GetString());
        Assert.Equal(JsonNull, (await server.Client.GetStatusAsync(second)).GetProperty("started_at").ValueKind);
    }

    [Fact]
    public async Task Stop_FinishedRun_409RunNotActive()
    {
        await using var server = await TestServer.StartAsync();
        var (runId, _) = await server.Client.StartRunAsync(new { input = "done soon" });
        await server.Client.ReadAllEventsAsync(runId);

        using var response = await server.Client.PostAsync($"/v1/runs/{runId}/stop", null);

        await response.AssertErrorAsync(409, "run_not_active");
        Assert.Equal("completed", (await server.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Stop_UnknownRun_404RunNotFound()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.PostAsync("/v1/runs/run_nope/stop", null);
        await response.AssertErrorAsync(404, "run_not_found");
    }

    [Fact]
    public async Task Shutdown_RunningAndQueuedRuns_EndCancelled()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var (running, _) = await server.Client.StartRunAsync(new { input = "/tool block {}", session_id = "s" });
        var (queued, _) = await server.Client.StartRunAsync(new { input = "later", session_id = "s" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var registry = server.Service<IRunRegistry>();

        await server.App.StopAsync();

        Assert.True(tool.Cancelled.Task.IsCompleted);
        foreach (var id in new[] { running, queued })
        {
            var run = registry.Get(id)!;
            Assert.Equal(RunState.Cancelled, run.State);
            Assert.Equal("run.cancelled", run.Events.Snapshot()[^1].Name);
        }
        Assert.DoesNotContain(registry.Get(queued)!.Events.Snapshot(), e => e.Name == "run.started");
    }

    private const System.Text.Json.JsonValueKind JsonNull = System.Text.Json.JsonValueKind.Null;
}
