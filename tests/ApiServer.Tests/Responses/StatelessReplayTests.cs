using System.Text.Json.Nodes;

namespace ApiServer.Tests.Responses;

/// <summary>
/// Clients that keep no server state (store:false) send the previous output items back as input, as the spec allows for
/// any output item. That must work for what this server itself produced, in either tool rendering.
/// </summary>
public sealed class StatelessReplayTests
{
    [Theory]
    [InlineData("mcp")]
    [InlineData("hermes")]
    public async Task Create_ReplayedOutputOfServerToolTurn_AcceptedAndSentAsHistory(string rendering)
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeUpstream.FakeResponse.Stream().ToolCall("call_1", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeUpstream.FakeResponse.Text("the file says hello"));
        var first = await harness.CreateAsync(new { model = "agent", input = "read a.txt", store = false, tool_rendering = rendering });

        var input = new JsonArray { new JsonObject { ["role"] = "user", ["content"] = "read a.txt" } };
        foreach (var item in first["output"]!.AsArray())
            input.Add(item!.DeepClone());
        input.Add(new JsonObject { ["role"] = "user", ["content"] = "thanks" });
        var second = await harness.CreateAsync(new JsonObject { ["model"] = "agent", ["store"] = false, ["tool_rendering"] = rendering, ["input"] = input });

        Assert.Equal("completed", second["status"]!.GetValue<string>());
        var transcript = ResponsesHarness.Transcript(harness.Upstream.Requests[2]).Where(l => !l.StartsWith("system:")).ToList();
        Assert.Equal(5, transcript.Count);
        Assert.Equal("user: read a.txt", transcript[0]);
        Assert.Matches("""^assistant:  \[call \S+ read_file {"path":"a.txt"}\]$""", transcript[1]);
        Assert.EndsWith($": {ResponsesHarness.FileText}", transcript[2]);
        Assert.Equal("assistant: the file says hello", transcript[3]);
        Assert.Equal("user: thanks", transcript[4]);
    }
}
