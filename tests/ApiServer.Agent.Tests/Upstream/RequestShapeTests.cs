using System.Text.Json;
using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class RequestShapeTests
{
    private static readonly JsonElement WeatherSchema = JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}}}""").RootElement;

    [Fact]
    public async Task The_request_streams_with_usage_and_sends_the_bearer_key_and_model()
    {
        await using var h = await AgentHarness.StartAsync();

        await h.RunAsync("hi");

        var request = Assert.Single(h.Upstream.Requests);
        Assert.Equal("Bearer sk-test", request.Authorization);
        Assert.Equal("primary-model", request.Model);
        Assert.True(request.Body.GetProperty("stream").GetBoolean());
        Assert.True(request.Body.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public async Task Instructions_are_layered_after_the_base_prompt_in_one_system_message()
    {
        await using var h = await AgentHarness.StartAsync();

        await h.RunAsync(new AgentRequest { Instructions = "Answer in French.", Messages = [ChatMessage.User("hi")] });

        var messages = h.Upstream.Requests[0].Body.GetProperty("messages");
        Assert.Equal("system", messages[0].GetProperty("role").GetString());
        Assert.Equal("You are a test agent.\n\nAnswer in French.", messages[0].GetProperty("content").GetString());
        Assert.Equal("hi", messages[1].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Messages_are_serialized_in_the_OpenAI_shape()
    {
        await using var h = await AgentHarness.StartAsync();
        var history = new List<ChatMessage>
        {
            new() { Role = ChatRole.User, Content = [ContentPart.FromText("what is this?"), ContentPart.FromImage("https://x/cat.png", "low")] },
            ChatMessage.Assistant("", [new ToolCall("call_1", "lookup", """{"q":"cat"}""")]),
            ChatMessage.ToolResult("call_1", "lookup", "a cat"),
            ChatMessage.User("thanks"),
        };

        await h.RunAsync(new AgentRequest { Messages = history });

        var messages = h.Upstream.Requests[0].Body.GetProperty("messages");
        var parts = messages[1].GetProperty("content");
        Assert.Equal("text", parts[0].GetProperty("type").GetString());
        Assert.Equal("what is this?", parts[0].GetProperty("text").GetString());
        Assert.Equal("image_url", parts[1].GetProperty("type").GetString());
        Assert.Equal("https://x/cat.png", parts[1].GetProperty("image_url").GetProperty("url").GetString());
        Assert.Equal("low", parts[1].GetProperty("image_url").GetProperty("detail").GetString());

        var assistant = messages[2];
        Assert.Equal(JsonValueKind.Null, assistant.GetProperty("content").ValueKind);
        var call = assistant.GetProperty("tool_calls")[0];
        Assert.Equal("call_1", call.GetProperty("id").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        Assert.Equal("lookup", call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"q":"cat"}""", call.GetProperty("function").GetProperty("arguments").GetString());

        Assert.Equal("tool", messages[3].GetProperty("role").GetString());
        Assert.Equal("call_1", messages[3].GetProperty("tool_call_id").GetString());
        Assert.Equal("a cat", messages[3].GetProperty("content").GetString());
        Assert.Equal("thanks", messages[4].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Generation_settings_tools_and_a_named_tool_choice_are_passed_through()
    {
        await using var h = await AgentHarness.StartAsync();
        var request = new AgentRequest
        {
            Messages = [ChatMessage.User("hi")],
            Settings = new GenerationSettings { Temperature = 0.5, TopP = 0.9, MaxTokens = 256, Stop = ["END"], User = "u-1", ParallelToolCalls = false },
            ClientTools = [new ToolDefinition("weather", "Get the weather", WeatherSchema)],
            ToolChoice = new ToolChoice(ToolChoiceMode.Function, "weather"),
        };

        await h.RunAsync(request);

        var body = h.Upstream.Requests[0].Body;
        Assert.Equal(0.5, body.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, body.GetProperty("top_p").GetDouble());
        Assert.Equal(256, body.GetProperty("max_tokens").GetInt32());
        Assert.Equal("END", body.GetProperty("stop")[0].GetString());
        Assert.Equal("u-1", body.GetProperty("user").GetString());
        Assert.False(body.GetProperty("parallel_tool_calls").GetBoolean());
        var tool = body.GetProperty("tools")[0];
        Assert.Equal("function", tool.GetProperty("type").GetString());
        Assert.Equal("weather", tool.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("Get the weather", tool.GetProperty("function").GetProperty("description").GetString());
        Assert.Equal("object", tool.GetProperty("function").GetProperty("parameters").GetProperty("type").GetString());
        Assert.Equal("weather", body.GetProperty("tool_choice").GetProperty("function").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Tool_choice_none_sends_no_tools_and_no_parallel_flag()
    {
        await using var h = await AgentHarness.StartAsync();
        await h.RunAsync(new AgentRequest
        {
            Messages = [ChatMessage.User("hi")],
            Settings = new GenerationSettings { ParallelToolCalls = true },
            ClientTools = [new ToolDefinition("weather", "Get the weather", WeatherSchema)],
            ToolChoice = ToolChoice.None,
        });

        var body = h.Upstream.Requests[0].Body;
        Assert.False(body.TryGetProperty("tools", out _));
        Assert.False(body.TryGetProperty("parallel_tool_calls", out _));
    }

    [Fact]
    public async Task Required_tool_choice_is_sent_and_relaxed_to_auto_after_the_first_tool_round()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Agent:SystemPrompt"] = "" }, configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "echo_tool", """{"text":"x"}""").Finish("tool_calls"),
            FakeResponse.Text("done"));

        await h.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")], ToolChoice = ToolChoice.Required });

        Assert.Equal("required", h.Upstream.Requests[0].Body.GetProperty("tool_choice").GetString());
        Assert.Equal("auto", h.Upstream.Requests[1].Body.GetProperty("tool_choice").GetString());
        Assert.Equal("user", h.Upstream.Requests[0].Body.GetProperty("messages")[0].GetProperty("role").GetString());
    }
    [Fact]
    public async Task A_history_reused_across_calls_is_sent_the_same_and_a_changed_copy_is_sent_as_changed()
    {
        await using var h = await AgentHarness.StartAsync();
        var question = ChatMessage.User("first question");
        var answer = ChatMessage.Assistant("first answer");

        await h.RunAsync(new AgentRequest { Messages = [question] });
        await h.RunAsync(new AgentRequest { Messages = [question, answer, ChatMessage.User("second")] });
        await h.RunAsync(new AgentRequest { Messages = [question, answer with { Content = [ContentPart.FromText("edited answer")] }, ChatMessage.User("third")] });

        var second = h.Upstream.Requests[1].Body.GetProperty("messages");
        var third = h.Upstream.Requests[2].Body.GetProperty("messages");
        Assert.Equal(4, second.GetArrayLength());
        Assert.Equal(["system", "user", "assistant", "user"], second.EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(["first question", "first answer", "second"], second.EnumerateArray().Skip(1).Select(m => m.GetProperty("content").GetString()));
        Assert.Equal(["first question", "edited answer", "third"], third.EnumerateArray().Skip(1).Select(m => m.GetProperty("content").GetString()));
    }
    [Fact]
    public async Task A_long_history_and_a_message_larger_than_a_write_chunk_arrive_whole_and_in_order()
    {
        await using var h = await AgentHarness.StartAsync();
        var big = new string('x', 40_000) + " ünïcödé \"quoted\" end";
        var history = Enumerable.Range(0, 600).Select(i => i % 2 == 0 ? ChatMessage.User($"question {i}") : ChatMessage.Assistant($"answer {i}")).ToList();
        history.Add(ChatMessage.User(big));

        await h.RunAsync(new AgentRequest { Messages = history, ClientTools = [new ToolDefinition("weather", "Weather", WeatherSchema)] });

        var messages = h.Upstream.Requests[0].Body.GetProperty("messages");
        Assert.Equal(history.Select(m => m.Text), messages.EnumerateArray().Skip(1).Select(m => m.GetProperty("content").GetString()));
        Assert.Equal("weather", h.Upstream.Requests[0].Body.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
    }
}
