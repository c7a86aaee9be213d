using System.Text.Json;
using System.Text.RegularExpressions;
using ApiServer.Agent.Tools;
using ApiServer.Hosting;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Runs;

public sealed class RunsEventsTests
{
    [Fact]
    public async Task Events_AfterRunCompleted_ReplayWholeSequenceWithExactFraming()
    {
        await using var server = await TestServer.StartAsync();
        var (runId, _) = await server.Client.StartRunAsync(new { input = "hello" });
        await server.Client.ReadAllEventsTextAsync(runId); // wait for the end

        var text = await server.Client.ReadAllEventsTextAsync(runId);

        Assert.EndsWith("\n\n: stream closed\n\n", text);
        var frames = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < frames.Length - 1; i++)
            Assert.Matches(new Regex($"^id: {i + 1}\ndata: \\{{\"event\":\"[a-z.]+\",\"run_id\":\"{runId}\",\"timestamp\":[0-9]+(\\.[0-9]+)?[,}}]"), frames[i]);
        var events = RunsTestKit.Parse(text).ToList();
        Assert.Equal("run.started", events[0].Name);
        Assert.All(events.Skip(1).SkipLast(1), e => Assert.Equal("message.delta", e.Name));
        Assert.Equal("echo: hello", string.Concat(events.Skip(1).SkipLast(1).Select(e => e.Data.GetProperty("delta").GetString())));
        var completed = events[^1];
        Assert.Equal("run.completed", completed.Name);
        Assert.Equal("echo: hello", completed.Data.GetProperty("output").GetString());
        var usage = completed.Data.GetProperty("usage");
        Assert.Equal(usage.GetProperty("input_tokens").GetInt32() + usage.GetProperty("output_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        Assert.True(completed.Data.TryGetProperty("response_id", out _));
        Assert.Equal(JsonValueKind.Number, completed.Data.GetProperty("timestamp").ValueKind);
    }

    [Fact]
    public async Task Events_ToolCall_EmitsToolStartedAndCompletedWithPreview()
    {
        var tool = new BlockingTool();
        tool.Release.SetResult();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var longArgument = new string('x', 500);
        var (runId, _) = await server.Client.StartRunAsync(new { input = $$"""/tool block {"note":"{{longArgument}}"}""" });

        var events = await server.Client.ReadAllEventsAsync(runId);

        var started = Assert.Single(events, e => e.Name == "tool.started").Data;
        Assert.Equal("block", started.GetProperty("tool").GetString());
        var preview = started.GetProperty("preview").GetString()!;
        Assert.Equal(200, preview.Length);
        Assert.StartsWith("{\"note\":\"xxx", preview);
        Assert.EndsWith("…", preview);
        var completed = Assert.Single(events, e => e.Name == "tool.completed").Data;
        Assert.Equal(started.GetProperty("call_id").GetString(), completed.GetProperty("call_id").GetString());
        Assert.Equal("block", completed.GetProperty("tool").GetString());
        Assert.False(completed.GetProperty("error").GetBoolean());
        Assert.Equal(JsonValueKind.Number, completed.GetProperty("duration").ValueKind);
        Assert.Equal(["run.started", "tool.started", "tool.completed"], events.Take(3).Select(e => e.Name));
        Assert.Equal("run.completed", events[^1].Name);
    }

    [Fact]
    public async Task Events_TwoSubscribersDuringRun_EachReceiveEveryEvent()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var (runId, _) = await server.Client.StartRunAsync(new { input = "/tool block {}" });
        await using var first = await EventSubscriber.OpenAsync(server.Client, runId);
        await using var second = await EventSubscriber.OpenAsync(server.Client, runId);
        await first.WaitForAsync("tool.started");
        await second.WaitForAsync("tool.started");

        tool.Release.SetResult();
        var firstEvents = await first.ReadToEndAsync();
        var secondEvents = await second.ReadToEndAsync();

        var replayed = await server.Client.ReadAllEventsAsync(runId);
        Assert.Equal(replayed.Select(e => (e.Id, e.Data.GetRawText())), firstEvents.Select(e => (e.Id, e.Data.GetRawText())));
        Assert.Equal(replayed.Select(e => (e.Id, e.Data.GetRawText())), secondEvents.Select(e => (e.Id, e.Data.GetRawText())));
        Assert.Equal(Enumerable.Range(1, replayed.Count).Select(i => (long)i), replayed.Select(e => e.Id));
        Assert.Equal("run.completed", replayed[^1].Name);
    }

    [Theory]
    [InlineData("header")]
    [InlineData("last_event_id")]
    [InlineData("after")]
    public async Task Events_ResumeAfterEventId_SendsOnlyLaterEvents(string how)
    {
        await using var server = await TestServer.StartAsync();
        var (runId, _) = await server.Client.StartRunAsync(new { input = "resume me" });
        var all = await server.Client.ReadAllEventsAsync(runId);
        Assert.True(all.Count >= 4);

        var text = how == "header"
            ? await server.Client.ReadAllEventsTextAsync(runId, lastEventId: "2")
            : await server.Client.ReadAllEventsTextAsync(runId, query: $"?{how}=2");

        var resumed = RunsTestKit.Parse(text);
        Assert.Equal(all.Skip(2).Select(e => (e.Id, e.Data.GetRawText())), resumed.Select(e => (e.Id, e.Data.GetRawText())));
        Assert.EndsWith(": stream closed\n\n", text);
    }

    [Fact]
    public async Task Events_SubscriberDisconnects_RunStillCompletes()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        var (runId, _) = await server.Client.StartRunAsync(new { input = "/tool block {}" });
        await using (var subscriber = await EventSubscriber.OpenAsync(server.Client, runId))
            await subscriber.WaitForAsync("tool.started");

        // Nothing signals "the server noticed the disconnect", so wait for the stream count to drop before going on.
        var activity = server.Service<ServerActivity>();
        await Eventually.TrueAsync(() => activity.ActiveStreams == 0, "the event stream to be released");
        Assert.False(tool.Cancelled.Task.IsCompleted);
        tool.Release.SetResult();

        var events = await server.Client.ReadAllEventsAsync(runId);
        Assert.Equal("run.completed", events[^1].Name);
        Assert.Equal("completed", (await server.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        Assert.False(tool.Cancelled.Task.IsCompleted);
    }

    [Fact]
    public async Task Events_UnknownRun_404RunNotFound()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.GetAsync("/v1/runs/run_doesnotexist/events");
        await response.AssertErrorAsync(404, "run_not_found");
    }

    [Fact]
    public async Task Events_InvalidLastEventId_400()
    {
        await using var server = await TestServer.StartAsync();
        var (runId, _) = await server.Client.StartRunAsync(new { input = "x" });
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/runs/{runId}/events");
        request.Headers.Add("Last-Event-ID", "abc");
        using var response = await server.Client.SendAsync(request);
        await response.AssertErrorAsync(400, "invalid_value", "Last-Event-ID");
    }

}
