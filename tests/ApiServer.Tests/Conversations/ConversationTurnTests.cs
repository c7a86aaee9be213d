using System.Net;
using System.Text.Json.Nodes;
using ApiServer.Conversations;
using ApiServer.Sessions;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;
using static ApiServer.Tests.Conversations.ConversationsKit;

namespace ApiServer.Tests.Conversations;

/// <summary>/v1/responses with <c>conversation: "conv_…"</c>: the stored items are the history, and each turn is appended.</summary>
public sealed class ConversationTurnTests
{
    [Fact]
    public async Task ThreeTurns_UpstreamSeesTheWholeConversation_AndItemsKeepTheResponsesIds()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var id = (await CreateAsync(harness.Client, new
        {
            items = new object[]
            {
                new { role = "developer", content = "Answer briefly." },
                new { role = "user", content = "My name is Ada." },
            },
        })).GetProperty("id").GetString()!;
        harness.Upstream.Enqueue(FakeResponse.Text("Hello Ada."), FakeResponse.Text("Ada."), FakeResponse.Text("Two."));

        var first = await harness.CreateAsync(new { model = "agent", input = "Greet me.", conversation = id });
        var second = await harness.CreateAsync(new { model = "agent", input = "What is my name?", conversation = new { id } });
        await harness.CreateAsync(new { model = "agent", input = new[] { new { role = "user", content = "How many questions?" } }, conversation = id });

        Assert.Equal(id, first["conversation"]!["id"]!.GetValue<string>());
        Assert.Equal(id, second["conversation"]!["id"]!.GetValue<string>());
        var third = ResponsesHarness.Transcript(harness.Upstream.Requests[2]);
        Assert.EndsWith("Answer briefly.", third[0]); // the developer item layers after the instructions, as in input
        Assert.Equal(
            ["user: My name is Ada.", "user: Greet me.", "assistant: Hello Ada.", "user: What is my name?", "assistant: Ada.", "user: How many questions?"],
            third.Skip(1));

        var items = await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc&limit=100");
        var data = items.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(8, data.Count);
        Assert.Equal(first["output"]![0]!["id"]!.GetValue<string>(), data[3].GetProperty("id").GetString());
        Assert.Equal(second["output"]![0]!["id"]!.GetValue<string>(), data[5].GetProperty("id").GetString());
        Assert.Equal(["My name is Ada.", "Greet me.", "Hello Ada.", "What is my name?", "Ada.", "How many questions?", "Two."],
            data.Skip(1).Select(Text));
    }

    [Fact]
    public async Task ClientToolTurn_OutputAnswersTheCallStoredInTheConversation()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_w", "get_weather", """{"city":"Oslo"}""").Finish("tool_calls"), FakeResponse.Text("It is sunny."));

        var call = await harness.CreateAsync(new { model = "agent", input = "Weather in Oslo?", tools = new[] { ResponsesHarness.WeatherTool }, conversation = id });
        Assert.Equal("function_call", call["output"]![0]!["type"]!.GetValue<string>());
        await harness.CreateAsync(new
        {
            model = "agent", tools = new[] { ResponsesHarness.WeatherTool }, conversation = id,
            input = new[] { new { type = "function_call_output", call_id = "call_w", output = "sunny" } },
        });

        Assert.Equal(["user: Weather in Oslo?", """assistant:  [call call_w get_weather {"city":"Oslo"}]""", "tool call_w: sunny"],
            History(harness.Upstream.Requests[1]));
    }

    [Fact]
    public async Task ConcurrentTurns_OnOneConversation_RunOneAtATime()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Upstream.Enqueue(FakeResponse.Stream().WaitFor(gate.Task).Content("first answer").Finish("stop"), FakeResponse.Text("second answer"));

        var first = harness.CreateAsync(new { model = "agent", input = "one", conversation = id });
        await harness.Upstream.WaitForRequestAsync(1);
        var second = harness.CreateAsync(new { model = "agent", input = "two", conversation = id });
        var locks = harness.Server.Service<KeyedLock>();
        await Eventually.TrueAsync(() => Task.FromResult(locks.QueueLength(ConversationTurns.LockKey(id, ApiServer.Access.Owner.Anonymous)) == 2), "the second turn to queue");
        Assert.Single(harness.Upstream.Requests);
        gate.SetResult();
        await Task.WhenAll(first, second);

        Assert.Equal(["user: one", "assistant: first answer", "user: two"], History(harness.Upstream.Requests[1]));
        var items = await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc");
        Assert.Equal(["one", "first answer", "two", "second answer"], items.GetProperty("data").EnumerateArray().Select(Text));
    }

    [Fact]
    public async Task FailedTurn_AddsNothingToTheConversation()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;
        harness.Upstream.Enqueue(FakeResponse.Error(400, "bad request upstream"));

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new { model = "agent", input = "hi", conversation = id }));

        Assert.False(response.IsSuccessStatusCode);
        Assert.Empty(Ids(await GetAsync(harness.Client, $"/v1/conversations/{id}/items")));
    }

    [Fact]
    public async Task StoreFalse_TurnIsStillAddedToTheConversation()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;

        var response = await harness.CreateAsync(new { input = "hello", conversation = id, store = false });

        var items = await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc");
        Assert.Equal(["hello", "echo: hello"], items.GetProperty("data").EnumerateArray().Select(Text));
        Assert.Null(await harness.GetAsync(response["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task HermesStyleName_KeepsItsMeaning()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Text("noted"), FakeResponse.Text("blue"));

        var first = await harness.CreateAsync(new { model = "agent", input = "My colour is blue.", conversation = "my-chat" });
        await harness.CreateAsync(new { model = "agent", input = "My colour?", conversation = "my-chat" });

        Assert.Equal("my-chat", first["conversation"]!["id"]!.GetValue<string>());
        Assert.Equal(["user: My colour is blue.", "assistant: noted", "user: My colour?"], History(harness.Upstream.Requests[1]));
        using var notAConversation = await harness.Client.GetAsync("/v1/conversations/my-chat");
        await notAConversation.AssertErrorAsync(400, "invalid_value", "conversation_id");
    }

    [Fact]
    public async Task StreamedTurn_IsAddedWithTheStreamsItemIds()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;

        var stream = await harness.StreamAsync(new { input = "hi", conversation = id });

        var output = stream.Terminal["output"]!.AsArray();
        Assert.Equal(id, stream.Terminal["conversation"]!["id"]!.GetValue<string>());
        var items = await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc");
        Assert.Equal(output[0]!["id"]!.GetValue<string>(), Ids(items)[1]);
        Assert.True(JsonNode.DeepEquals(output[0], JsonNode.Parse(items.GetProperty("data")[1].GetRawText())));
    }

    [Fact]
    public async Task DeletedItem_IsNoLongerHistory()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var created = await CreateAsync(harness.Client, new { items = new[] { new { role = "user", content = "secret" }, new { role = "user", content = "kept" } } });
        var id = created.GetProperty("id").GetString()!;
        var secret = Ids(await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc"))[0];
        using (var delete = await harness.Client.DeleteAsync($"/v1/conversations/{id}/items/{secret}"))
            Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        harness.Upstream.Enqueue(FakeResponse.Text("ok"));

        await harness.CreateAsync(new { model = "agent", input = "go", conversation = id });

        Assert.Equal(["user: kept", "user: go"], History(harness.Upstream.Requests[0]));
    }
}
