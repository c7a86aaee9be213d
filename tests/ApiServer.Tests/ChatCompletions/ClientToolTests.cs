using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>Client-defined function tools: validation, what the upstream is offered, and how calls come back.</summary>
public sealed class ClientToolTests
{
    private const string WeatherTool = """{"type":"function","function":{"name":"get_weather","description":"Weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}""";
    private const string TimeTool = """{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}""";

    private static string Request(string tools, string? toolChoice = null, bool stream = false) =>
        $$"""{"stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"weather in Oslo?"}],"tools":{{tools}}{{(toolChoice is null ? "" : ",\"tool_choice\":" + toolChoice)}}}""";

    private static Dictionary<string, string?> Workspace => new() { ["AGENT_WORKSPACE"] = ChatHarness.CreateWorkspace() };

    private static IEnumerable<string> OfferedTools(RecordedRequest request) =>
        request.Body.TryGetProperty("tools", out var tools) ? tools.EnumerateArray().Select(t => t.GetProperty("function").GetProperty("name").GetString()!) : [];

    [Theory]
    [InlineData("""[{"type":"function","function":{"name":"list_dir"}}]""", "tool_name_conflict", "tools[0].function.name")]
    [InlineData("[" + TimeTool + """,{"type":"web_search"}]""", "unsupported_tool_type", "tools[1].type")]
    [InlineData("""[{"type":"custom","custom":{"name":"x"}}]""", "unsupported_tool_type", "tools[0].type")]
    [InlineData("""[{"type":"function","function":{"description":"no name"}}]""", "missing_required_parameter", "tools[0].function.name")]
    [InlineData("""[{"type":"function"}]""", "missing_required_parameter", "tools[0].function")]
    [InlineData("""[{"type":"function","function":{"name":"has space"}}]""", "invalid_function_name", "tools[0].function.name")]
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":"nope"}}]""", "invalid_function_parameters", "tools[0].function.parameters")]
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":{"type":"array"}}}]""", "invalid_function_parameters", "tools[0].function.parameters.type")]
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":5}}}}]""", "invalid_function_parameters", "tools[0].function.parameters.properties.a")]
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":{"type":"object","required":"a"}}}]""", "invalid_function_parameters", "tools[0].function.parameters.required")]
    // Kept as raw JSON, so checked as text on the way in: an unpaired surrogate would otherwise fail when sent upstream (a 500).
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","description":"\ud800"}}}}}]""", "invalid_json", "tools[0].function.parameters")]
    [InlineData($"""[{TimeTool},{TimeTool}]""", "duplicate_tool_name", "tools")]
    [InlineData("""{"type":"function"}""", "invalid_type", "tools")]
    public async Task Post_InvalidClientTools_Returns400WithParam(string tools, string code, string param)
    {
        await using var chat = await ChatHarness.StartOfflineAsync(Workspace);

        using var response = await chat.PostRawAsync(Request(tools));

        await response.AssertErrorAsync(400, code, param);
    }

    [Theory]
    [InlineData("\"sometimes\"", "invalid_value", "tool_choice")]
    [InlineData("""{"type":"function","function":{"name":"unknown_fn"}}""", "invalid_value", "tool_choice.function.name")]
    [InlineData("""{"type":"allowed_tools"}""", "unsupported_tool_type", "tool_choice.type")]
    public async Task Post_InvalidToolChoice_Returns400WithParam(string toolChoice, string code, string param)
    {
        await using var chat = await ChatHarness.StartOfflineAsync();

        using var response = await chat.PostRawAsync(Request($"[{WeatherTool}]", toolChoice));

        await response.AssertErrorAsync(400, code, param);
    }

    [Theory]
    [InlineData("[]", null)]
    [InlineData($"[{WeatherTool}]", "\"none\"")]
    public async Task Post_NoToolsOrChoiceNone_OffersNoClientTools(string tools, string? toolChoice)
    {
        await using var chat = await ChatHarness.StartAsync(Workspace);

        using var response = await chat.PostRawAsync(Request(tools, toolChoice));

        Assert.Equal(200, (int)response.StatusCode);
        var offered = OfferedTools(chat.FakeUpstream.Requests.Single()).ToList();
        Assert.Contains("list_dir", offered);
        Assert.DoesNotContain("get_weather", offered);
    }

    [Fact]
    public async Task Post_NoToolsAtAllOffline_SendsNoToolsUpstream()
    {
        await using var chat = await ChatHarness.StartAsync();

        using var response = await chat.PostRawAsync(Request("[]"));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.False(chat.FakeUpstream.Requests.Single().Body.TryGetProperty("tools", out _));
    }

    [Theory]
    [InlineData("\"required\"", "\"required\"")]
    [InlineData("""{"type":"function","function":{"name":"get_weather"}}""", """{"type":"function","function":{"name":"get_weather"}}""")]
    [InlineData(null, "\"auto\"")]
    public async Task Post_ToolChoice_ReachesUpstream(string? toolChoice, string expected)
    {
        await using var chat = await ChatHarness.StartAsync();

        using var response = await chat.PostRawAsync(Request($"[{WeatherTool}]", toolChoice));

        Assert.Equal(200, (int)response.StatusCode);
        var sent = chat.FakeUpstream.Requests.Single().Body;
        Assert.Equal(expected, sent.GetProperty("tool_choice").GetRawText());
        var tool = sent.GetProperty("tools").EnumerateArray().Single().GetProperty("function");
        Assert.Equal("get_weather", tool.GetProperty("name").GetString());
        Assert.Equal("Weather for a city", tool.GetProperty("description").GetString());
        Assert.Equal("city", tool.GetProperty("parameters").GetProperty("required")[0].GetString());
    }

    [Fact]
    public async Task Post_ParallelClientCalls_ReturnsBothCallsAndFinishReasonToolCalls()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream()
            .ToolCall("call_a", "get_weather", """{"city":"Oslo"}""")
            .ToolCall("call_b", "get_time", "{}")
            .Finish("tool_calls").Usage(5, 5));

        using var response = await chat.PostRawAsync(Request($"[{WeatherTool},{TimeTool}]"));
        var body = await response.ReadJsonAsync();

        var choice = body.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        var calls = message.GetProperty("tool_calls").EnumerateArray().ToList();
        Assert.Equal(["call_a", "call_b"], calls.Select(c => c.GetProperty("id").GetString()));
        Assert.All(calls, c => Assert.Equal("function", c.GetProperty("type").GetString()));
        Assert.Equal("get_weather", calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"city":"Oslo"}""", calls[0].GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("{}", calls[1].GetProperty("function").GetProperty("arguments").GetString());
    }

    [Fact]
    public async Task Stream_ParallelClientCalls_FirstFragmentCarriesIdTypeNameLaterOnlyArguments()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream()
            .ToolCall("call_a", "get_weather", """{"city":"Oslo"}""", fragments: 3)
            .ToolCall("call_b", "get_time", "{}")
            .Finish("tool_calls").Usage(5, 5));

        using var response = await chat.PostRawAsync(Request($"[{WeatherTool},{TimeTool}]", stream: true));
        var blocks = await SseBlock.ReadAllAsync(response);

        Assert.True(blocks[^1].IsDone);
        var chunks = SseBlock.Chunks(blocks).Select(c => c.GetProperty("choices")[0]).ToList();
        Assert.Equal("tool_calls", chunks[^1].GetProperty("finish_reason").GetString());
        Assert.Equal("{}", chunks[^1].GetProperty("delta").GetRawText());
        var fragments = chunks.Where(c => c.GetProperty("delta").TryGetProperty("tool_calls", out _))
            .SelectMany(c => c.GetProperty("delta").GetProperty("tool_calls").EnumerateArray()).ToList();
        Assert.DoesNotContain(chunks, c => c.GetProperty("delta").TryGetProperty("content", out var t) && t.ValueKind != JsonValueKind.Null);
        Assert.Equal(JsonValueKind.Null, chunks[0].GetProperty("delta").GetProperty("content").ValueKind); // as OpenAI: no text is null
        foreach (var (index, id, name, arguments) in new[] { (0, "call_a", "get_weather", """{"city":"Oslo"}"""), (1, "call_b", "get_time", "{}") })
        {
            var mine = fragments.Where(f => f.GetProperty("index").GetInt32() == index).ToList();
            Assert.Equal(id, mine[0].GetProperty("id").GetString());
            Assert.Equal("function", mine[0].GetProperty("type").GetString());
            Assert.Equal(name, mine[0].GetProperty("function").GetProperty("name").GetString());
            foreach (var later in mine.Skip(1))
            {
                Assert.False(later.TryGetProperty("id", out _));
                Assert.False(later.TryGetProperty("type", out _));
                Assert.False(later.GetProperty("function").TryGetProperty("name", out _));
            }
            Assert.Equal(arguments, string.Concat(mine.Select(f => f.GetProperty("function").GetProperty("arguments").GetString())));
        }
        Assert.Equal(2, fragments.Select(f => f.GetProperty("index").GetInt32()).Distinct().Count());
    }
}
