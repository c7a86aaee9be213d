using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Agent.Tests.Loop;

/// <summary>AgentRequest.MaxToolCalls: calls past the cap are ignored (never run, never returned), then no tools are offered.</summary>
public sealed class ToolBudgetTests
{
    private static AgentRequest Request(int max, IReadOnlyList<ToolDefinition>? clientTools = null) => new()
    {
        Messages = [new ChatMessage { Role = ChatRole.User, Content = [ContentPart.FromText("go")] }],
        MaxToolCalls = max,
        ClientTools = clientTools ?? [],
    };

    [Fact]
    public async Task Calls_past_the_cap_are_not_run_and_the_next_model_call_has_no_tools()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "echo_tool", """{"text":"one"}""").ToolCall("c2", "echo_tool", """{"text":"two"}""").Finish("tool_calls"),
            FakeResponse.Text("done"));

        var events = await h.RunAsync(Request(max: 1));

        Assert.Equal(["c1"], events.OfType<ToolCallStarted>().Select(e => e.CallId));
        Assert.False(h.Upstream.Requests[1].Body.TryGetProperty("tools", out _));
        var completed = events.Completed();
        Assert.Equal("done", completed.FinalText);
        Assert.Equal(["c1"], completed.NewMessages[0].ToolCalls!.Select(c => c.Id));
    }

    [Fact]
    public async Task A_turn_whose_every_call_is_past_the_cap_asks_again_for_an_answer()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "echo_tool", """{"text":"one"}""").Finish("tool_calls"),
            FakeResponse.Stream().ToolCall("c2", "echo_tool", """{"text":"two"}""").Finish("tool_calls"),
            FakeResponse.Text("answer"));

        var events = await h.RunAsync(Request(max: 1));

        Assert.Equal(["c1"], events.OfType<ToolCallStarted>().Select(e => e.CallId));
        Assert.Equal(3, h.Upstream.CallCount);
        Assert.Equal("answer", events.Completed().FinalText);
    }

    [Fact]
    public async Task Client_calls_count_against_the_same_cap()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        var weather = new ToolDefinition("get_weather", "Weather", TestToolRegistration.Schema("""{"type":"object"}"""));
        h.Upstream.Enqueue(FakeResponse.Stream()
            .ToolCall("c1", "echo_tool", """{"text":"one"}""").ToolCall("c2", "get_weather", "{}").ToolCall("c3", "get_weather", "{}").Finish("tool_calls"));

        var events = await h.RunAsync(Request(max: 2, [weather]));

        var completed = events.Completed();
        Assert.Equal(FinishReason.ToolCalls, completed.FinishReason);
        Assert.Equal(["c2"], completed.ClientToolCalls.Select(c => c.Id));
        Assert.Equal(["c1"], events.OfType<ToolCallStarted>().Select(e => e.CallId));
    }
}
