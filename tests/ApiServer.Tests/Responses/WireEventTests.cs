using System.Text.Json.Nodes;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>The exact Responses event stream on the wire: names, order, sequence numbers, indices, and the terminal response.</summary>
public sealed class WireEventTests
{
    private static readonly string[] Terminals = ["response.completed", "response.incomplete", "response.failed"];

    [Fact]
    public async Task Stream_TextOnly_EmitsSpecLifecycleExactly()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var stream = await harness.StreamAsync(new { model = "agent", input = "hello wire" });

        Assert.Equal(
        [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added",
            .. Enumerable.Repeat("response.output_text.delta", stream.Types.Count(t => t == "response.output_text.delta")),
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.completed",
        ], stream.Types);
        Assert.True(stream.Types.Count(t => t == "response.output_text.delta") > 1);
        await AssertConsistentAsync(harness, stream);
        Assert.Equal("echo: hello wire", stream.Events.Single(e => e.Type == "response.output_text.done").Data["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task Stream_ServerToolMcp_EmitsMcpCallThenMessage()
    {
        await using var harness = await ResponsesHarness.StartAsync(workspace: true);

        var stream = await harness.StreamAsync(new { model = "agent", input = """/tool read_file {"path":"a.txt"}""" });

        Assert.Equal(
        [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.mcp_call.in_progress", "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
            "response.mcp_call.completed", "response.output_item.done",
            "response.output_item.added", "response.content_part.added",
            .. Enumerable.Repeat("response.output_text.delta", stream.Types.Count(t => t == "response.output_text.delta")),
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.completed",
        ], stream.Types);
        await AssertConsistentAsync(harness, stream);
        var mcp = stream.Terminal["output"]![0]!;
        Assert.Equal("mcp_call", mcp["type"]!.GetValue<string>());
        Assert.Equal("""{"path":"a.txt"}""", mcp["arguments"]!.GetValue<string>());
        Assert.Equal(ResponsesHarness.FileText, mcp["output"]!.GetValue<string>());
    }

    [Fact]
    public async Task Stream_ServerToolHermes_EmitsFunctionCallAndOutputItems()
    {
        await using var harness = await ResponsesHarness.StartAsync(workspace: true, settings: new Dictionary<string, string?> { ["API_SERVER_RESPONSES_TOOL_RENDERING"] = "hermes" });

        var stream = await harness.StreamAsync(new { model = "agent", input = """/tool read_file {"path":"a.txt"}""" });

        Assert.Equal(
        [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
            "response.output_item.added", "response.output_item.done",
            "response.output_item.added", "response.content_part.added",
            .. Enumerable.Repeat("response.output_text.delta", stream.Types.Count(t => t == "response.output_text.delta")),
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.completed",
        ], stream.Types);
        await AssertConsistentAsync(harness, stream);
        Assert.Equal(["function_call", "function_call_output", "message"], stream.Terminal["output"]!.AsArray().Select(i => i!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Stream_IterationLimitReached_EndsWithResponseIncomplete()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true,
            settings: new Dictionary<string, string?> { ["AGENT_MAX_ITERATIONS"] = "1" });
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5));

        var stream = await harness.StreamAsync(new { model = "agent", input = "loop forever" });

        Assert.Equal("response.incomplete", stream.Types[^1]);
        Assert.Equal("incomplete", stream.Terminal["status"]!.GetValue<string>());
        Assert.Equal("max_iterations", stream.Terminal["incomplete_details"]!["reason"]!.GetValue<string>());
        Assert.Equal(1, harness.Upstream.CallCount);
        await AssertConsistentAsync(harness, stream);
    }

    [Fact]
    public async Task Stream_UpstreamDiesMidAnswer_FailedWithIncompleteMessageItem()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        // The upstream resets only after the server has relayed its text, so the partial answer is really in flight.
        var relayed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("half an ans").WaitFor(relayed.Task).Abort());

        var stream = await harness.StreamAsync(new { model = "agent", input = "hi" }, e =>
        {
            if (e["type"]!.GetValue<string>() == "response.output_text.delta")
                relayed.TrySetResult();
        });

        Assert.Equal("response.failed", stream.Types[^1]);
        Assert.Equal(["response.output_text.done", "response.content_part.done", "response.output_item.done"], stream.Types.SkipLast(1).TakeLast(3));
        var message = Assert.Single(stream.Terminal["output"]!.AsArray())!;
        Assert.Equal("incomplete", message["status"]!.GetValue<string>());
        Assert.Equal("half an ans", message["content"]![0]!["text"]!.GetValue<string>());
        // The spec's ResponseErrorCode, which strict clients validate (it was our own "upstream_error").
        Assert.Equal("server_error", stream.Terminal["error"]!["code"]!.GetValue<string>());
        await AssertConsistentAsync(harness, stream);
    }

    /// <summary>
    /// Checks every rule a strict client relies on: event name = type, sequence 0..n-1, created then in_progress first, exactly
    /// one terminal event and it is last, items appended at 0,1,2…, every item-scoped event names the right item id and index of
    /// the final output, each output_item.done equals the final item, and the terminal response equals what GET returns.
    /// </summary>
    internal static async Task AssertConsistentAsync(ResponsesHarness harness, SseStream stream)
    {
        Assert.All(stream.Events, e => Assert.Equal(e.Type, e.Name));
        Assert.Equal(Enumerable.Range(0, stream.Events.Count), stream.Events.Select(e => e.Data["sequence_number"]!.GetValue<int>()));
        Assert.Equal(["response.created", "response.in_progress"], stream.Types.Take(2));
        Assert.Single(stream.Types, Terminals.Contains);
        Assert.Contains(stream.Types[^1], Terminals);

        var final = stream.Terminal;
        var output = final["output"]!.AsArray();
        var added = stream.Events.Where(e => e.Type == "response.output_item.added").Select(e => e.Data["output_index"]!.GetValue<int>());
        Assert.Equal(Enumerable.Range(0, output.Count), added);
        foreach (var e in stream.Events.Where(e => e.Data.ContainsKey("output_index")))
        {
            var index = e.Data["output_index"]!.GetValue<int>();
            var item = output[index]!;
            if (e.Data["item_id"] is { } itemId)
                Assert.Equal(item["id"]!.GetValue<string>(), itemId.GetValue<string>());
            if (e.Data["item"] is { } eventItem)
                Assert.Equal(item["id"]!.GetValue<string>(), eventItem["id"]!.GetValue<string>());
            if (e.Type == "response.output_item.done")
                Assert.True(JsonNode.DeepEquals(item, e.Data["item"]), $"output_item.done {e.Data["item"]} != final {item}");
            if (e.Data["content_index"] is { } contentIndex)
                Assert.InRange(contentIndex.GetValue<int>(), 0, item["content"]!.AsArray().Count - 1);
        }

        var stored = await harness.GetAsync(final["id"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(final, stored), $"terminal {final}\n!= GET {stored}");
    }
}
