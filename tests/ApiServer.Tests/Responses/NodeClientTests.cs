using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// The official openai-node SDK (tests/clients/node, openai 7.57.0) against the server. <c>responses.stream()</c> runs every
/// event through the SDK's strict accumulator (order, indices, item ids and types, identity of items between added, done and
/// the terminal response); <c>chat.completions.stream()</c> checks role, finish_reason and tool-call fragments. A rejected
/// stream makes the script exit 1 with the SDK's message, which fails the test.
/// </summary>
public sealed class NodeClientTests
{
    private static string[] OutputTypes(JsonNode response) => [.. response["output"]!.AsArray().Select(i => i!["type"]!.GetValue<string>())];

    [Fact]
    public async Task ResponsesStream_TextOnly_HelperAcceptsAndFinalMatchesStored()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress, new { model = "agent", input = "hello" })).Success;

        var events = result["events"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        Assert.Equal(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"], events.Take(4));
        Assert.Equal("response.completed", events[^1]);
        var final = result["final"]!;
        Assert.Equal("completed", final["status"]!.GetValue<string>());
        Assert.Equal("echo: hello", final["output_text"]!.GetValue<string>());
        var stored = await harness.GetAsync(final["id"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(stored!["output"], StripSdkFields(final["output"]!)), $"{stored["output"]}\n!=\n{final["output"]}");
    }

    [Fact]
    public async Task ResponsesStream_ServerToolMcpDefault_HelperAcceptsMcpCall()
    {
        await using var harness = await ResponsesHarness.StartAsync(workspace: true);

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress,
            new { model = "agent", input = """/tool read_file {"path":"a.txt"}""" })).Success;

        var final = result["final"]!;
        Assert.Equal(["mcp_call", "message"], OutputTypes(final));
        Assert.Equal(ResponsesHarness.FileText, final["output"]![0]!["output"]!.GetValue<string>());
        Assert.Equal("completed", final["output"]![0]!["status"]!.GetValue<string>());
        Assert.Contains("response.mcp_call.completed", result["events"]!.AsArray().Select(e => e!.GetValue<string>()));
    }

    [Fact]
    public async Task ResponsesStream_ServerToolHermes_HelperAcceptsFunctionCallOutputItem()
    {
        // Hermes rendering puts function_call_output in *output*, which the spec only lists as an input item. openai-node
        // 7.57.0's accumulator accepts it (it checks id, type and call identity, not the item union), so the opt-in mode
        // passes the strict helper as well. Found on the way: its parts lacked "type":"input_text" (fixed in ResponseRenderer).
        await using var harness = await ResponsesHarness.StartAsync(workspace: true);

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress,
            new { model = "agent", input = """/tool read_file {"path":"a.txt"}""", tool_rendering = "hermes" })).Success;

        var final = result["final"]!;
        Assert.Equal(["function_call", "function_call_output", "message"], OutputTypes(final));
        Assert.Equal(final["output"]![0]!["call_id"]!.GetValue<string>(), final["output"]![1]!["call_id"]!.GetValue<string>());
        var part = final["output"]![1]!["output"]![0]!;
        Assert.Equal("input_text", part["type"]!.GetValue<string>());
        Assert.Equal(ResponsesHarness.FileText, part["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task ResponsesStream_UpstreamReasoning_HelperAcceptsReasoningItem()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Reasoning("thinking hard", chunks: 3).Content("the answer", chunks: 2).Finish("stop").Usage(10, 5, reasoningTokens: 3));

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress, new { model = "agent", input = "why?" })).Success;

        var final = result["final"]!;
        Assert.Equal(["reasoning", "message"], OutputTypes(final));
        Assert.Equal("thinking hard", final["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("the answer", final["output_text"]!.GetValue<string>());
        Assert.Equal(3, final["usage"]!["output_tokens_details"]!["reasoning_tokens"]!.GetValue<int>());
        Assert.Equal(3, result["events"]!.AsArray().Count(e => e!.GetValue<string>() == "response.reasoning_text.delta"));
    }

    [Fact]
    public async Task ResponsesStream_ClientFunctionTool_HelperAcceptsFunctionCall()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress, new
        {
            model = "agent",
            input = """/tool get_weather {"city":"Oslo"}""",
            tools = new[] { ResponsesHarness.WeatherTool },
        })).Success;

        var call = Assert.Single(result["final"]!["output"]!.AsArray())!;
        Assert.Equal("function_call", call["type"]!.GetValue<string>());
        Assert.Equal("get_weather", call["name"]!.GetValue<string>());
        Assert.Equal("""{"city":"Oslo"}""", call["arguments"]!.GetValue<string>());
        Assert.StartsWith("call_", call["call_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task ResponsesStream_UpstreamRateLimitedBeforeOutput_SdkSeesHttp429()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "7"));

        var result = await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress, new { model = "agent", input = "hi" });

        // An HTTP 429, which openai-node retries on its own (the script sets maxRetries 0 so the error surfaces here).
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("(HTTP 429)", result.Error);
    }

    [Fact]
    public async Task ResponsesStream_UpstreamHitsLengthAfterToolAndReasoning_HelperSeesIncomplete()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().Reasoning("plan").Content("Let me look.").ToolCall("call_1", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Stream().Reasoning("got it").Content("It says hel").Finish("length").Usage(10, 5));

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress, new { model = "agent", input = "read it", max_output_tokens = 16 })).Success;

        var final = result["final"]!;
        Assert.Equal("incomplete", final["status"]!.GetValue<string>());
        Assert.Equal("max_output_tokens", final["incomplete_details"]!["reason"]!.GetValue<string>());
        Assert.Equal(["reasoning", "message", "mcp_call", "reasoning", "message"], OutputTypes(final));
        Assert.Equal("Let me look.It says hel", final["output_text"]!.GetValue<string>());
    }

    [Fact]
    public async Task ResponsesCreate_NonStreaming_RetrieveReturnsSameResponse()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var result = (await NodeClient.RunAsync("responses-create.mjs", harness.BaseAddress, new { model = "agent", input = "hi there" })).Success;

        Assert.Equal("echo: hi there", result["created"]!["output_text"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(result["created"], result["retrieved"]), $"{result["created"]}\n!=\n{result["retrieved"]}");
    }

    [Fact]
    public async Task ChatStream_Text_HelperFinalHasRoleFinishAndUsage()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var result = (await NodeClient.RunAsync("chat-stream.mjs", harness.BaseAddress, new
        {
            model = "agent",
            messages = new[] { new { role = "user", content = "hello" } },
            stream_options = new { include_usage = true },
        })).Success;

        var choice = result["final"]!["choices"]![0]!;
        Assert.Equal("assistant", choice["message"]!["role"]!.GetValue<string>());
        Assert.Equal("echo: hello", choice["message"]!["content"]!.GetValue<string>());
        Assert.Equal("stop", choice["finish_reason"]!.GetValue<string>());
        Assert.True(result["final"]!["usage"]!["total_tokens"]!.GetValue<int>() > 0);
    }

    [Fact]
    public async Task ChatStream_ClientToolCall_HelperAccumulatesToolCall()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var result = (await NodeClient.RunAsync("chat-stream.mjs", harness.BaseAddress, new
        {
            model = "agent",
            messages = new[] { new { role = "user", content = """/tool get_weather {"city":"Oslo"}""" } },
            tools = new[]
            {
                new { type = "function", function = new { name = "get_weather", parameters = new { type = "object", properties = new { city = new { type = "string" } } } } },
            },
        })).Success;

        var choice = result["final"]!["choices"]![0]!;
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        // As OpenAI streams it and as the non-streamed answer has it: no text is null, not "".
        Assert.Null(choice["message"]!["content"]);
        var call = Assert.Single(choice["message"]!["tool_calls"]!.AsArray())!;
        Assert.Equal("function", call["type"]!.GetValue<string>());
        Assert.Equal("get_weather", call["function"]!["name"]!.GetValue<string>());
        Assert.Equal("""{"city":"Oslo"}""", call["function"]!["arguments"]!.GetValue<string>());
    }

    /// <summary>The node helper adds parsed/parsed_arguments to items; the server never sends them.</summary>
    private static JsonNode StripSdkFields(JsonNode output)
    {
        var copy = output.DeepClone();
        foreach (var item in copy.AsArray())
        {
            item!.AsObject().Remove("parsed_arguments");
            foreach (var part in item["content"]?.AsArray() ?? [])
                part!.AsObject().Remove("parsed");
        }
        return copy;
    }
}
