using System.Text.Json;
using System.Text.Json.Nodes;
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
        Assert.Equal(77, sent.GetProperty("max_tokens").GetInt32());
        Assert.Equal(["END", "STOP"], sent.GetProperty("stop").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal("user-42", sent.GetProperty("user").GetString());
        Assert.Equal("fake-model", sent.GetProperty("model").GetString());
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
