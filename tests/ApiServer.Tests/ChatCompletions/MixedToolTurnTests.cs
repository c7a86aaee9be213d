using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>
/// One model turn calls a server tool (list_dir) and a client tool (get_weather). The client only gets its own call back;
/// when it answers, the model must see the whole turn: every call, the server result, then the client's result.
/// </summary>
public sealed class MixedToolTurnTests
{
    private static readonly JsonNode WeatherTool = JsonNode.Parse("""{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}""")!;

    private static async Task<ChatHarness> StartAsync(bool withKey)
    {
        var settings = new Dictionary<string, string?> { ["AGENT_WORKSPACE"] = ChatHarness.CreateWorkspace() };
        if (withKey)
            settings["API_SERVER_KEY"] = TestServer.Key;
        var chat = await ChatHarness.StartAsync(settings);
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_srv", "list_dir", "{}").ToolCall("call_cli", "get_weather", """{"city":"Oslo"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("Oslo is sunny and you have notes.txt"));
        return chat;
    }

    private static JsonObject Body(bool stream, params JsonNode[] messages) => new()
    {
        ["stream"] = stream,
        ["messages"] = new JsonArray(messages),
        ["tools"] = new JsonArray(WeatherTool.DeepClone()),
    };

    private static JsonNode User(string text) => new JsonObject { ["role"] = "user", ["content"] = text };

    /// <summary>Turn 1; returns the assistant message the client received (rebuilt from chunks when streaming).</summary>
    private static async Task<JsonObject> FirstTurnAsync(ChatHarness chat, bool stream, string opening, Dictionary<string, string>? headers, HttpClient? client)
    {
        using var response = await chat.PostRawAsync(Body(stream, User(opening)).ToJsonString(), headers, client);
        Assert.Equal(200, (int)response.StatusCode);
        List<(string Id, string Name, string Arguments)> calls;
        if (stream)
        {
            var fragments = SseBlock.Chunks(await SseBlock.ReadAllAsync(response))
                .Where(c => c.GetProperty("choices").GetArrayLength() > 0 && c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("tool_calls", out _))
                .SelectMany(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("tool_calls").EnumerateArray()).ToList();
            calls = [.. fragments.GroupBy(f => f.GetProperty("index").GetInt32()).Select(g => (
                g.First().GetProperty("id").GetString()!,
                g.First().GetProperty("function").GetProperty("name").GetString()!,
                string.Concat(g.Select(f => f.GetProperty("function").GetProperty("arguments").GetString()))))];
        }
        else
        {
            var message = (await response.ReadJsonAsync()).GetProperty("choices")[0].GetProperty("message");
            calls = [.. message.GetProperty("tool_calls").EnumerateArray().Select(c => (
                c.GetProperty("id").GetString()!, c.GetProperty("function").GetProperty("name").GetString()!, c.GetProperty("function").GetProperty("arguments").GetString()!))];
        }
        return new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = null,
            ["tool_calls"] = new JsonArray([.. calls.Select(c => (JsonNode)new JsonObject
            {
                ["id"] = c.Id,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments },
            })]),
        };
    }

    private static void AssertModelSawWholeTurn(RecordedRequest second)
    {
        var messages = second.Messages();
        Assert.Equal("user,assistant,tool,tool", second.Roles());
        Assert.Equal(["call_srv", "call_cli"], messages[1]!["tool_calls"]!.AsArray().Select(c => c!["id"]!.GetValue<string>()));
        Assert.Equal(["list_dir", "get_weather"], messages[1]!["tool_calls"]!.AsArray().Select(c => c!["function"]!["name"]!.GetValue<string>()));
        Assert.Equal("call_srv", messages[2]!["tool_call_id"]!.GetValue<string>());
        Assert.Contains("notes.txt", messages[2]!["content"]!.GetValue<string>());
        Assert.Equal("call_cli", messages[3]!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("sunny, 21C", messages[3]!["content"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task Continue_AfterMixedTurn_ModelSeesServerAndClientResultsInOrder(bool stream, bool namedSession)
    {
        await using var chat = await StartAsync(namedSession);
        using var client = namedSession ? chat.Server.AuthorizedClient() : null;
        var headers = namedSession ? new Dictionary<string, string> { ["X-Session-Id"] = "mixed-1" } : null;

        var assistant = await FirstTurnAsync(chat, stream, "weather and files?", headers, client);
        // Only the client's own call came back; the server tool ran.
        Assert.Equal("call_cli", assistant["tool_calls"]!.AsArray().Single()!["id"]!.GetValue<string>());
        Assert.Equal("""{"city":"Oslo"}""", assistant["tool_calls"]![0]!["function"]!["arguments"]!.GetValue<string>());

        var toolResult = new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_cli", ["content"] = "sunny, 21C" };
        using var response = await chat.PostRawAsync(Body(stream, User("weather and files?"), assistant, toolResult).ToJsonString(), headers, client);
        var text = stream
            ? SseBlock.Content(await SseBlock.ReadAllAsync(response))
            : (await response.ReadJsonAsync()).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();

        Assert.Equal("Oslo is sunny and you have notes.txt", text);
        AssertModelSawWholeTurn(chat.FakeUpstream.Requests[1]);
    }

    [Fact]
    public async Task Continue_FromAnotherConversationWithTheSameCallId_GetsNoServerResults()
    {
        await using var chat = await StartAsync(withKey: false);
        var assistant = await FirstTurnAsync(chat, stream: false, "weather and files?", null, null);

        var toolResult = new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_cli", ["content"] = "sunny, 21C" };
        using var response = await chat.PostRawAsync(Body(false, User("a different opening"), assistant, toolResult).ToJsonString());

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("user,assistant,tool", chat.FakeUpstream.Requests[1].Roles());
        Assert.DoesNotContain("notes.txt", chat.FakeUpstream.Requests[1].Body.GetRawText());
    }

    [Fact]
    public async Task Turn_MixedCalls_PersistsEveryCallAndTheServerResult()
    {
        await using var chat = await StartAsync(withKey: false);
        using var response = await chat.PostRawAsync(Body(false, User("weather and files?")).ToJsonString());
        await response.Content.ReadAsStringAsync();
        var store = chat.Server.Service<ApiServer.Sessions.ISessionStore>();
        var sessionId = response.Headers.GetValues("X-Session-Id").Single();

        IReadOnlyList<ApiServer.Sessions.SessionMessage> messages = [];
        await Eventually.TrueAsync(async () => (messages = await store.GetMessagesAsync(sessionId, "", default)).Count >= 3, "the turn to be stored");

        Assert.Equal(["call_srv", "call_cli"], messages[1].Message.ToolCalls!.Select(c => c.Id));
        Assert.Equal("call_srv", messages[2].Message.ToolCallId);
    }
}
