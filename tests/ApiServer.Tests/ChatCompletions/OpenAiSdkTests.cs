using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using OpenAI;
using OpenAI.Chat;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>The official OpenAI .NET SDK (2.15) against the running server: what a strict real client accepts.</summary>
public sealed class OpenAiSdkTests
{
    private const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""";

    private static ChatClient Sdk(ChatHarness chat, string key = TestServer.Key) => new("sdk-model", new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = new Uri(chat.Server.BaseAddress, "/v1"),
        RetryPolicy = new ClientRetryPolicy(0),
    });

    private static ChatCompletionOptions WeatherTool() => new() { Tools = { ChatTool.CreateFunctionTool("get_weather", "Weather for a city", BinaryData.FromString(WeatherSchema)) } };

    private static Dictionary<string, string?> Settings(bool workspace = false)
    {
        var settings = new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key };
        if (workspace)
            settings["AGENT_WORKSPACE"] = ChatHarness.CreateWorkspace();
        return settings;
    }

    /// <summary>Reads a whole stream: text, finish reason, usage, and tool calls accumulated by index (the SDK hands out raw fragments).</summary>
    private static async Task<(string Text, ChatFinishReason? Finish, ChatTokenUsage? Usage, List<ChatToolCall> Calls, HashSet<string> Ids)> ReadStreamAsync(
        AsyncCollectionResult<StreamingChatCompletionUpdate> updates)
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var ids = new HashSet<string>();
        var calls = new SortedDictionary<int, (string Id, string Name, StringBuilder Arguments)>();
        await foreach (var update in updates)
        {
            if (update.CompletionId is { } id)
                ids.Add(id);
            foreach (var part in update.ContentUpdate)
                text.Append(part.Text);
            foreach (var fragment in update.ToolCallUpdates)
            {
                if (!calls.TryGetValue(fragment.Index, out var call))
                    calls[fragment.Index] = call = (fragment.ToolCallId, fragment.FunctionName, new StringBuilder());
                call.Arguments.Append(fragment.FunctionArgumentsUpdate?.ToString());
            }
            finish = update.FinishReason ?? finish;
            usage = update.Usage ?? usage;
        }
        var toolCalls = calls.Values.Select(c => ChatToolCall.CreateFunctionToolCall(c.Id, c.Name, BinaryData.FromString(c.Arguments.ToString()))).ToList();
        return (text.ToString(), finish, usage, toolCalls, ids);
    }

    [Fact]
    public async Task CompleteChat_Offline_ReturnsAssistantAnswerWithUsage()
    {
        await using var chat = await ChatHarness.StartOfflineAsync(Settings());

        ChatCompletion completion = await Sdk(chat).CompleteChatAsync([new SystemChatMessage("be kind"), new UserChatMessage("hello sdk")]);

        Assert.Equal("echo: hello sdk", completion.Content.Single().Text);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("sdk-model", completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Null(completion.Refusal);
        Assert.True(completion.Usage.OutputTokenCount > 0);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task CompleteChatStreaming_Offline_StreamsTextAndReportsUsage()
    {
        await using var chat = await ChatHarness.StartOfflineAsync(Settings());

        var (text, finish, usage, calls, ids) = await ReadStreamAsync(Sdk(chat).CompleteChatStreamingAsync([new UserChatMessage("stream me")]));

        Assert.Equal("echo: stream me", text);
        Assert.Equal(ChatFinishReason.Stop, finish);
        // 2.15 always asks for stream usage: the last chunk carries it.
        Assert.NotNull(usage);
        Assert.True(usage.TotalTokenCount > 0);
        Assert.Empty(calls);
        Assert.Single(ids);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CompleteChat_ServerToolRun_AnswersFromTheToolResult(bool stream)
    {
        await using var chat = await ChatHarness.StartOfflineAsync(Settings(workspace: true));
        ChatMessage[] messages = [new UserChatMessage("""/tool list_dir {}""")];

        var text = stream
            ? (await ReadStreamAsync(Sdk(chat).CompleteChatStreamingAsync(messages))).Text
            : (await Sdk(chat).CompleteChatAsync(messages)).Value.Content.Single().Text;

        Assert.Contains("Tool list_dir returned:", text);
        Assert.Contains("notes.txt", text);
    }

    [Fact]
    public async Task CompleteChat_ClientFunctionTool_RoundTrips()
    {
        await using var chat = await ChatHarness.StartAsync(Settings());
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_w1", "get_weather", """{"city":"Oslo"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("It is sunny in Oslo"));
        var client = Sdk(chat);
        List<ChatMessage> messages = [new UserChatMessage("Weather in Oslo?")];

        ChatCompletion first = await client.CompleteChatAsync(messages, WeatherTool());
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Oslo"}""", call.FunctionArguments.ToString());

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "sunny, 21C"));
        ChatCompletion second = await client.CompleteChatAsync(messages, WeatherTool());

        Assert.Equal("It is sunny in Oslo", second.Content.Single().Text);
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        var sent = chat.FakeUpstream.Requests[1];
        Assert.Equal("user,assistant,tool", sent.Roles());
        Assert.Equal("call_w1", sent.Messages()[2]!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("sunny, 21C", sent.Messages()[2]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChatStreaming_ClientFunctionTool_RoundTrips()
    {
        await using var chat = await ChatHarness.StartAsync(Settings());
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_w1", "get_weather", """{"city":"Oslo"}""", fragments: 4).Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("It is sunny in Oslo", chunks: 4));
        var client = Sdk(chat);
        List<ChatMessage> messages = [new UserChatMessage("Weather in Oslo?")];

        var first = await ReadStreamAsync(client.CompleteChatStreamingAsync(messages, WeatherTool()));
        Assert.Equal(ChatFinishReason.ToolCalls, first.Finish);
        var call = Assert.Single(first.Calls);
        Assert.Equal("call_w1", call.Id);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Oslo"}""", call.FunctionArguments.ToString());
        Assert.Equal("", first.Text);

        messages.Add(new AssistantChatMessage(first.Calls));
        messages.Add(new ToolChatMessage(call.Id, "sunny, 21C"));
        var second = await ReadStreamAsync(client.CompleteChatStreamingAsync(messages, WeatherTool()));

        Assert.Equal("It is sunny in Oslo", second.Text);
        Assert.Equal(ChatFinishReason.Stop, second.Finish);
        Assert.Equal("user,assistant,tool", chat.FakeUpstream.Requests[1].Roles());
    }

    [Fact]
    public async Task CompleteChat_UpstreamFails_ThrowsWithMappedStatus()
    {
        await using var chat = await ChatHarness.StartAsync(Settings());
        chat.FakeUpstream.Enqueue(FakeResponse.Error(500));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(chat).CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(502, error.Status);
    }

    [Fact]
    public async Task CompleteChat_WrongKey_Throws401()
    {
        await using var chat = await ChatHarness.StartOfflineAsync(Settings());

        var error = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(chat, "wrong-key").CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(401, error.Status);
    }
}
