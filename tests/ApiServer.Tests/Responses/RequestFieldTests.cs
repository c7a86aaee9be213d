using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// The OpenAI request fields /v1/responses honours: forwarded to the upstream where chat completions has them, echoed where
/// OpenAI echoes them, max_tool_calls capping the turn's calls. (The spec's failure codes are checked in WireEventTests.)
/// </summary>
public sealed class RequestFieldTests
{
    [Fact]
    public async Task Create_OpenAiSettings_ForwardedAndEchoed()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("ok").Finish("stop"));

        var created = await harness.CreateAsync(new
        {
            model = "agent", input = "hi", service_tier = "flex", prompt_cache_key = "pck", safety_identifier = "user-hash",
            prompt_cache_retention = "24h", user = "u1", parallel_tool_calls = false, top_logprobs = 3, max_tool_calls = 2,
            tools = new[] { ResponsesHarness.WeatherTool }, stream_options = new { include_obfuscation = false },
        });

        var sent = harness.Upstream.Requests[0].Body;
        Assert.Equal("flex", sent.GetProperty("service_tier").GetString());
        Assert.Equal("pck", sent.GetProperty("prompt_cache_key").GetString());
        Assert.Equal("user-hash", sent.GetProperty("safety_identifier").GetString());
        Assert.Equal("24h", sent.GetProperty("prompt_cache_retention").GetString());
        Assert.Equal("u1", sent.GetProperty("user").GetString());
        Assert.False(sent.GetProperty("parallel_tool_calls").GetBoolean());
        Assert.False(sent.TryGetProperty("top_logprobs", out _));
        Assert.False(sent.TryGetProperty("max_tool_calls", out _));
        Assert.Equal("flex", created["service_tier"]!.GetValue<string>());
        Assert.Equal("pck", created["prompt_cache_key"]!.GetValue<string>());
        Assert.Equal("user-hash", created["safety_identifier"]!.GetValue<string>());
        Assert.Equal(3, created["top_logprobs"]!.GetValue<int>());
        Assert.Equal(2, created["max_tool_calls"]!.GetValue<int>());
        Assert.False(created["parallel_tool_calls"]!.GetValue<bool>());
        Assert.Equal("u1", created["user"]!.GetValue<string>());
    }

    [Fact]
    public async Task Create_MaxToolCalls_CallsPastTheCapNeverRunAndNoMoreToolsOffered()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_1", "read_file", """{"path":"a.txt"}""").ToolCall("call_2", "read_file", """{"path":"b.txt"}""").Finish("tool_calls"),
            FakeResponse.Stream().Content("done").Finish("stop"));

        var created = await harness.CreateAsync(new { model = "agent", input = "read both", max_tool_calls = 1 });

        var calls = created["output"]!.AsArray().Where(i => i!["type"]!.GetValue<string>() == "mcp_call").ToList();
        var call = Assert.Single(calls)!;
        Assert.Equal("""{"path":"a.txt"}""", call["arguments"]!.GetValue<string>());
        Assert.Equal("done", created["output"]!.AsArray()[^1]!["content"]![0]!["text"]!.GetValue<string>());
        var second = harness.Upstream.Requests[1];
        Assert.False(second.Body.TryGetProperty("tools", out _), "the capped turn still offered tools");
        Assert.Equal(["user: read both", """assistant:  [call call_1 read_file {"path":"a.txt"}]""", $"tool call_1: {ResponsesHarness.FileText}"],
            ResponsesHarness.Transcript(second).Where(l => !l.StartsWith("system:")));
    }

    [Fact]
    public async Task Create_MaxToolCalls_CapsClientCallsToo()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream()
            .ToolCall("call_1", "get_weather", """{"city":"Oslo"}""").ToolCall("call_2", "get_weather", """{"city":"Rome"}""").Finish("tool_calls"));

        var created = await harness.CreateAsync(new { model = "agent", input = "weather", max_tool_calls = 1, tools = new[] { ResponsesHarness.WeatherTool } });

        var call = Assert.Single(created["output"]!.AsArray())!;
        Assert.Equal("function_call", call["type"]!.GetValue<string>());
        Assert.Equal("call_1", call["call_id"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"model":"agent","input":"hi","max_tool_calls":-1}""", "max_tool_calls", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","max_tool_calls":"2"}""", "max_tool_calls", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","top_logprobs":21}""", "top_logprobs", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","service_tier":1}""", "service_tier", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","safety_identifier":"0123456789012345678901234567890123456789012345678901234567890123x"}""", "safety_identifier", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","stream_options":{"include_obfuscation":"no"}}""", "stream_options.include_obfuscation", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","prompt":{"id":"pmpt_1"}}""", "prompt", "unknown_parameter")]
    public async Task Create_BadField_Returns400NamingIt(string body, string param, string code)
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(body));

        await response.AssertErrorAsync(400, code, param);
    }
}
