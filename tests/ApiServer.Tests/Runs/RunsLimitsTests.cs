using System.Net;
using ApiServer.Agent.Tools;
using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Runs;

public sealed class RunsLimitsTests
{
    [Fact]
    public async Task Start_PastConcurrencyLimit_429WithRetryAfterUntilASlotFrees()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        upstream.Enqueue(FakeResponse.Stream().Content("held ").WaitFor(hold.Task).Content("done").Finish("stop").Usage(3, 2));
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_MAX_CONCURRENT_RUNS"] = "1",
            ["LLM_BASE_URL"] = upstream.BaseUrl,
            ["LLM_MODEL"] = "fake-model",
        });
        var (first, status) = await server.Client.StartRunAsync(new { input = "first" });
        Assert.Equal("running", status);
        await upstream.WaitForRequestAsync(1);

        using (var refused = await server.Client.PostRunAsync(new { input = "second" }))
        {
            await refused.AssertErrorAsync(429, "rate_limit_exceeded");
            Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero, "Retry-After missing");
        }
        using (var otherSession = await server.Client.PostRunAsync(new { input = "third", session_id = "other" }))
            await otherSession.AssertErrorAsync(429, "rate_limit_exceeded");
        Assert.Equal(1, server.Service<IRunRegistry>().Count);

        hold.SetResult();
        var events = await server.Client.ReadAllEventsAsync(first);
        Assert.Equal("held done", events[^1].Data.GetProperty("output").GetString());
        var (next, nextStatus) = await server.Client.StartRunAsync(new { input = "after" });
        Assert.Equal("running", nextStatus);
        Assert.Equal("echo: after", (await server.Client.ReadAllEventsAsync(next))[^1].Data.GetProperty("output").GetString());
    }

    [Fact]
    public async Task Start_SameSessionWhileRunning_QueuedAndRunInOrder()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var (first, firstStatus) = await server.Client.StartRunAsync(new { input = "/tool block {}", session_id = "chat-1" });
        var (second, secondStatus) = await server.Client.StartRunAsync(new { input = "second" }, sessionHeader: "chat-1");
        var (third, thirdStatus) = await server.Client.StartRunAsync(new { input = "third", session_id = "chat-1" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(("running", "queued", "queued"), (firstStatus, secondStatus, thirdStatus));
        var secondState = await server.Client.GetStatusAsync(second);
        Assert.Equal("queued", secondState.GetProperty("status").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, secondState.GetProperty("started_at").ValueKind);

        tool.Release.SetResult();
        var outputs = new List<string>();
        var previousFinish = 0.0;
        foreach (var (id, position) in new[] { (first, -1), (second, 1), (third, 2) })
        {
            var events = await server.Client.ReadAllEventsAsync(id);
            if (position >= 0)
            {
                Assert.Equal("run.queued", events[0].Name);
                Assert.Equal(position, events[0].Data.GetProperty("position").GetInt32());
                Assert.Equal("run.started", events[1].Name);
            }
            outputs.Add(events[^1].Data.GetProperty("output").GetString()!);
            var status = await server.Client.GetStatusAsync(id);
            Assert.True(status.GetProperty("started_at").GetDouble() >= previousFinish, $"{id} started before the run ahead of it finished");
            previousFinish = status.GetProperty("finished_at").GetDouble();
        }
        Assert.Equal(["Tool block returned: released", "echo: second", "echo: third"], outputs);
        Assert.Equal(1, tool.Calls);
    }

    [Fact]
    public async Task Start_QueueFull_429()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_MAX_QUEUED_RUNS"] = "1" },
            services: s => s.AddSingleton<IAgentTool>(tool));
        await server.Client.StartRunAsync(new { input = "/tool block {}", session_id = "s" });
        var (_, queued) = await server.Client.StartRunAsync(new { input = "waits", session_id = "s" });
        Assert.Equal("queued", queued);

        using var refused = await server.Client.PostRunAsync(new { input = "one too many", session_id = "s" });

        await refused.AssertErrorAsync(429, "rate_limit_exceeded");
        Assert.NotNull(refused.Headers.RetryAfter);
    }

    [Fact]
    public async Task Start_SameSessionWhenSlotsFull_QueuedNot429AndRunsNext()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_MAX_CONCURRENT_RUNS"] = "1" },
            services: s => s.AddSingleton<IAgentTool>(tool));
        var (first, _) = await server.Client.StartRunAsync(new { input = "/tool block {}", session_id = "s" });
        var (second, status) = await server.Client.StartRunAsync(new { input = "queued", session_id = "s" });
        Assert.Equal("queued", status);

        tool.Release.SetResult();

        Assert.Equal("run.completed", (await server.Client.ReadAllEventsAsync(first))[^1].Name);
        Assert.Equal("echo: queued", (await server.Client.ReadAllEventsAsync(second))[^1].Data.GetProperty("output").GetString());
        Assert.Equal(0, server.Service<RunScheduler>().Running);
    }
}
