using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>What the client sends reaches the upstream: assert on the request the fake upstream recorded.</summary>
public sealed class ChatRequestPassThroughTests
{
    [Fact]
    public async Task Post_SystemAndDeveloperMessages_AreMergedIntoOneLayeredSystemPrompt()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["AGENT_SYSTEM_PROMPT"] = "BASE" });

        await chat.CompleteAsync(ChatHarness.Body(
            new { role = "system", content = "first" },
            new { role = "user", content = "hi" },
            new { role = "developer", content = new[] { new { type = "text", text = "second" } } },
            new { role = "user", content = "again" }));

        var sent = chat.FakeUpstream.Requests.Single();
        Assert.Equal("system,user,user", sent.Roles());
        Assert.Equal("BASE\n\nfirst\n\nsecond", sent.Messages()[0]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Post_HistoryWithAssistantToolCallsAndToolResults_IsForwardedInOrder()
    {
        await using var chat = await ChatHarness.StartAsync();

        await chat.CompleteAsync(ChatHarness.Body(
            new { role = "user", content = "weather?" },
            new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = "call_w", type = "function", function = new { name = "weather", arguments = """{"city":"Oslo"}""" } } } },
            new { role = "tool", tool_call_id = "call_w", content = "rain" },
            new { role = "assistant", content = new[] { new { type = "output_text", text = "It rains." } } },
            new { role = "user", content = new object[] { new { type = "input_text", text = "and " }, new { type = "text", text = "tomorrow?" } } }));

        var messages = chat.FakeUpstream.Requests.Single().Messages();
        Assert.Equal("user,assistant,tool,assistant,user", chat.FakeUpstream.Requests.Single().Roles());
        var call = messages[1]!["tool_calls"]![0]!;
        Assert.Equal("call_w", call["id"]!.GetValue<string>());
        Assert.Equal("weather", call["function"]!["name"]!.GetValue<string>());
        Assert.Equal("""{"city":"Oslo"}""", call["function"]!["arguments"]!.GetValue<string>());
        Assert.Equal("call_w", messages[2]!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("rain", messages[2]!["content"]!.GetValue<string>());
        Assert.Equal("It rains.", messages[3]!["content"]!.GetValue<string>());
        Assert.Equal("and \ntomorrow?", messages[4]!["content"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("image_url", "https://example.com/cat.png")]
    [InlineData("image_url", "data:image/png;base64,iVBORw0KGgo=")]
    [InlineData("input_image", "http://example.com/dog.jpg")]
    public async Task Post_ImagePart_ReachesUpstreamAsImage(string type, string url)
    {
        await using var chat = await ChatHarness.StartAsync();
        object image = type == "image_url"
            ? new { type, image_url = new { url, detail = "low" } }
            : new { type, image_url = url, detail = "low" };

        await chat.CompleteAsync(ChatHarness.Body(new { role = "user", content = new object[] { new { type = "text", text = "what is it?" }, image } }));

        var content = chat.FakeUpstream.Requests.Single().Messages()[^1]!["content"]!.AsArray();
        Assert.Equal(2, content.Count);
        Assert.Equal("what is it?", content[0]!["text"]!.GetValue<string>());
        Assert.Equal("image_url", content[1]!["type"]!.GetValue<string>());
        Assert.Equal(url, content[1]!["image_url"]!["url"]!.GetValue<string>());
        Assert.Equal("low", content[1]!["image_url"]!["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Post_ImageOnlyUserMessage_IsVisibleInput()
    {
        await using var chat = await ChatHarness.StartAsync();

        await chat.CompleteAsync(ChatHarness.Body(new { role = "user", content = new[] { new { type = "image_url", image_url = new { url = "https://example.com/a.png" } } } }));

        Assert.Equal("image_url", chat.FakeUpstream.Requests.Single().Messages()[^1]!["content"]![0]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Post_SamplingSettings_PassThroughToUpstream()
    {
        await using var chat = await ChatHarness.StartAsync();

        await chat.CompleteAsync(new
        {
            model = "m",
            messages = new[] { ChatHarness.User("hi") },
            temperature = 0.25,
            top_p = 0.5,
            max_completion_tokens = 77,
            stop = new[] { "END", "STOP" },
            user = "user-42",
            n = 1,
        });

        var sent = chat.FakeUpstream.Requests.Single().Body;
        Assert.Equal(0.25, sent.GetProperty("temperature").GetDouble());
        Assert.Equal(0.5, sent.GetProperty("top_p").GetDouble());
        // Named as the client named it: OpenAI's reasoning models accept only max_completion_tokens.
        Assert.Equal(77, sent.GetProperty("max_completion_tokens").GetInt32());
        Assert.False(sent.TryGetProperty("max_tokens", out _));
        Assert.Equal(["END", "STOP"], sent.GetProperty("stop").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal("user-42", sent.GetProperty("user").GetString());
        Assert.Equal("fake-model", sent.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Post_StructuredOutputSeedPenaltiesAndReasoning_ReachTheUpstreamAsSent()
    {
        await using var chat = await ChatHarness.StartAsync();
        const string format = """{"type":"json_schema","json_schema":{"name":"city","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}""";

        using var response = await chat.PostRawAsync($$"""
            {"messages":[{"role":"user","content":"hi"}],"response_format":{{format}},"seed":42,"frequency_penalty":0.5,
             "presence_penalty":-1,"logit_bias":{"1734":-100},"reasoning_effort":"low","verbosity":"high"}
            """);

        Assert.Equal(200, (int)response.StatusCode);
        var sent = chat.FakeUpstream.Requests.Single().Body;
        Assert.Equal(System.Text.Json.Nodes.JsonNode.Parse(format)!.ToJsonString(), sent.GetProperty("response_format").GetRawText());
        Assert.Equal(42, sent.GetProperty("seed").GetInt64());
        Assert.Equal(0.5, sent.GetProperty("frequency_penalty").GetDouble());
        Assert.Equal(-1, sent.GetProperty("presence_penalty").GetDouble());
        Assert.Equal(-100, sent.GetProperty("logit_bias").GetProperty("1734").GetInt32());
        Assert.Equal("low", sent.GetProperty("reasoning_effort").GetString());
        Assert.Equal("high", sent.GetProperty("verbosity").GetString());
    }

    [Fact]
    public async Task Post_ParticipantNames_ReachTheUpstream()
    {
        await using var chat = await ChatHarness.StartAsync();

        using var response = await chat.PostRawAsync("""
            {"messages":[{"role":"user","content":"q","name":"ann"},{"role":"assistant","content":"a","name":"bot"},{"role":"user","content":"hi"}]}
            """);

        Assert.Equal(200, (int)response.StatusCode);
        var sent = chat.FakeUpstream.Requests.Single().Messages();
        Assert.Equal(["ann", "bot", null], sent.Select(m => (string?)m!["name"]));
    }

    [Theory]
    [InlineData("""{"response_format":{"type":"xml"}}""", "invalid_value", "response_format.type")]
    [InlineData("""{"response_format":"json"}""", "invalid_type", "response_format")]
    [InlineData("""{"response_format":{"type":"json_schema"}}""", "missing_required_parameter", "response_format.json_schema")]
    [InlineData("""{"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}""", "missing_required_parameter", "response_format.json_schema.name")]
    [InlineData("""{"response_format":{"type":"json_schema","json_schema":{"name":"a b"}}}""", "invalid_value", "response_format.json_schema.name")]
    [InlineData("""{"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":"x"}}}""", "invalid_type", "response_format.json_schema.schema")]
    [InlineData("""{"seed":"x"}""", "invalid_type", "seed")]
    [InlineData("""{"seed":1.5}""", "invalid_type", "seed")]
    [InlineData("""{"frequency_penalty":3}""", "invalid_value", "frequency_penalty")]
    [InlineData("""{"logit_bias":{"5":200}}""", "invalid_value", "logit_bias.5")]
    [InlineData("""{"reasoning_effort":1}""", "invalid_type", "reasoning_effort")]
    public async Task Post_BadUpstreamParameter_Returns400WithParam(string fields, string code, string param)
    {
        await using var chat = await ChatHarness.StartAsync();
        var body = System.Text.Json.Nodes.JsonNode.Parse(fields)!.AsObject();
        body["messages"] = System.Text.Json.Nodes.JsonNode.Parse("""[{"role":"user","content":"hi"}]""");

        using var response = await chat.PostRawAsync(body.ToJsonString());

        await response.AssertErrorAsync(400, code, param);
        Assert.Equal(0, chat.FakeUpstream.CallCount);
    }

    [Theory]
    [InlineData("json_object", 400)]
    [InlineData("text", 200)]
    public async Task Post_StructuredOutputOnTheOfflineModel_IsRefusedNotEchoed(string type, int status)
    {
        await using var chat = await ChatHarness.StartOfflineAsync();

        using var response = await chat.PostRawAsync("""{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":""" + $"\"{type}\"" + "}}");

        Assert.Equal(status, (int)response.StatusCode);
        if (status == 400)
            await response.AssertErrorAsync(400, "unsupported_value", "response_format");
    }

    [Fact]
    public async Task Post_MaxTokensAndStopString_PassThroughToUpstream()
    {
        await using var chat = await ChatHarness.StartAsync();

        await chat.CompleteAsync(new { messages = new[] { ChatHarness.User("hi") }, max_tokens = 12, stop = "\n\n" });

        var sent = chat.FakeUpstream.Requests.Single().Body;
        Assert.Equal(12, sent.GetProperty("max_tokens").GetInt32());
        Assert.Equal(["\n\n"], sent.GetProperty("stop").EnumerateArray().Select(s => s.GetString()));
        Assert.False(sent.TryGetProperty("temperature", out _));
    }

    [Theory]
    [InlineData("my-model", "my-model")]
    [InlineData(null, "agent")]
    public async Task Post_Model_IsEchoedBack(string? requested, string expected)
    {
        await using var chat = await ChatHarness.StartAsync();
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) };
        if (requested is not null)
            body["model"] = requested;

        using var response = await chat.PostRawAsync(body.ToJsonString());
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(expected, json.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Post_StreamingModel_IsEchoedInEveryChunk()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Text("hello there", chunks: 3));

        using var response = await chat.PostAsync(new { model = "stream-model", stream = true, messages = new[] { ChatHarness.User("hi") } });
        var chunks = SseBlock.Chunks(await SseBlock.ReadAllAsync(response));

        Assert.NotEmpty(chunks);
        Assert.All(chunks, c => Assert.Equal("stream-model", c.GetProperty("model").GetString()));
    }
}
