using System.Text.Json.Nodes;
using ApiServer.Tests.Access;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>item_reference input items, and mcp_call items replayed without their output, resolve to the stored item.</summary>
public sealed class ItemReferenceTests
{
    private static object Ref(string id) => new { type = "item_reference", id };

    /// <summary>What the upstream was sent, without the server's system prompt.</summary>
    private static List<string> Conversation(RecordedRequest request) => [.. ResponsesHarness.Transcript(request).Where(l => !l.StartsWith("system: "))];

    private static string IdOf(JsonObject response, string type) =>
        response["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == type)!["id"]!.GetValue<string>();

    private static async Task<string> FirstInputItemIdAsync(ResponsesHarness harness, JsonObject response)
    {
        using var answer = await harness.Client.GetAsync($"/v1/responses/{response["id"]}/input_items?order=desc&limit=1");
        return JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["data"]![0]!["id"]!.GetValue<string>();
    }

    /// <summary>A stored turn with reasoning, a server tool call (mcp_call) and a message, and a stored turn ending in a client call.</summary>
    private static async Task<(JsonObject ToolTurn, JsonObject ClientTurn)> TwoStoredTurnsAsync(ResponsesHarness harness)
    {
        harness.Upstream.Enqueue(
            FakeResponse.Stream().Reasoning("let me look").ToolCall("call_r", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("it says hello"),
            FakeResponse.Stream().ToolCall("call_c", "get_weather", """{"city":"Oslo"}""").Finish("tool_calls").Usage(10, 5));
        var toolTurn = await harness.CreateAsync(new { model = "agent", input = "read a.txt" });
        var clientTurn = await harness.CreateAsync(new { model = "agent", input = "weather?", tools = new[] { ResponsesHarness.WeatherTool } });
        return (toolTurn, clientTurn);
    }

    [Fact]
    public async Task ItemReferences_ToEveryKindOfStoredItem_ReachTheUpstreamAsTheItemsThemselves()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        var (toolTurn, clientTurn) = await TwoStoredTurnsAsync(harness);
        var mcp = IdOf(toolTurn, "mcp_call");
        harness.Upstream.Enqueue(FakeResponse.Text("sunny it is"), FakeResponse.Text("bye"));

        var third = await harness.CreateAsync(new
        {
            model = "agent",
            tools = new[] { ResponsesHarness.WeatherTool },
            input = new object[]
            {
                Ref(await FirstInputItemIdAsync(harness, toolTurn)), Ref(IdOf(toolTurn, "reasoning")), Ref(mcp), Ref(IdOf(toolTurn, "message")),
                Ref(await FirstInputItemIdAsync(harness, clientTurn)), Ref(IdOf(clientTurn, "function_call")),
                new { type = "function_call_output", call_id = "call_c", output = "sunny" },
            },
        });
        // The function_call_output given inline above is now a stored item too.
        var output = await FirstInputItemIdAsync(harness, third);
        await harness.CreateAsync(new { model = "agent", tools = new[] { ResponsesHarness.WeatherTool }, input = new object[]
        {
            Ref(IdOf(clientTurn, "function_call")), Ref(output), Ref(IdOf(third, "message")), new { role = "user", content = "thanks" },
        } });

        Assert.Equal(
        [
            "user: read a.txt", // the reasoning item is left out, as reasoning input always is
            $"assistant:  [call {mcp} read_file {{\"path\":\"a.txt\"}}]", $"tool {mcp}: {ResponsesHarness.FileText}",
            "assistant: it says hello",
            "user: weather?", "assistant:  [call call_c get_weather {\"city\":\"Oslo\"}]", "tool call_c: sunny",
        ], Conversation(await harness.Upstream.WaitForRequestAsync(4)));
        Assert.Equal(
        [
            "assistant:  [call call_c get_weather {\"city\":\"Oslo\"}]", "tool call_c: sunny", "assistant: sunny it is", "user: thanks",
        ], Conversation(await harness.Upstream.WaitForRequestAsync(5)));
    }

    [Fact]
    public async Task ItemReferences_WithPreviousResponseId_ItemsAlreadyInTheChainAreNotAddedAgain()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        var (toolTurn, _) = await TwoStoredTurnsAsync(harness);
        harness.Upstream.Enqueue(FakeResponse.Text("again"));

        var next = await harness.CreateAsync(new
        {
            model = "agent",
            previous_response_id = toolTurn["id"]!.GetValue<string>(),
            input = new object[] { Ref(IdOf(toolTurn, "message")), Ref(IdOf(toolTurn, "mcp_call")), Ref(IdOf(toolTurn, "message")), "once more" },
        });

        var mcp = IdOf(toolTurn, "mcp_call");
        Assert.Equal(
        [
            "user: read a.txt", "assistant:  [call call_r read_file {\"path\":\"a.txt\"}]", $"tool call_r: {ResponsesHarness.FileText}",
            "assistant: it says hello", "user: once more",
        ], Conversation(await harness.Upstream.WaitForRequestAsync(4)));
        using var items = await harness.Client.GetAsync($"/v1/responses/{next["id"]}/input_items?order=asc");
        var listed = JsonNode.Parse(await items.Content.ReadAsStringAsync())!["data"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(listed.Count, listed.Distinct().Count());
        Assert.Contains(mcp, listed);
    }

    [Fact]
    public async Task ItemReference_UnknownId_Is400NamingItsId()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new
        {
            model = "agent",
            input = new object[] { "hi", Ref("msg_doesnotexist") },
        }));

        await response.AssertErrorAsync(400, "item_not_found", "input[1].id");
    }

    [Fact]
    public async Task ItemReference_AnotherKeysItem_IsAnsweredAsUnknownAndAnAdminFindsIt()
    {
        var keys = AccessKit.WriteKeysFile(AccessKit.File(
            AccessKit.Entry("alice", AccessKit.AliceKey, "responses"), AccessKit.Entry("bob", AccessKit.BobKey, "responses"), AccessKit.Entry("root", AccessKit.RootKey, "admin")));
        await using var server = await AccessKit.StartAsync(keys);
        async Task<HttpResponseMessage> PostAsync(string key, object body)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(body) };
            request.Headers.Authorization = new("Bearer", key);
            return await server.Client.SendAsync(request);
        }
        using var stored = await PostAsync(AccessKit.AliceKey, new { model = "agent", input = "secret" });
        var message = JsonNode.Parse(await stored.Content.ReadAsStringAsync())!["output"]![0]!["id"]!.GetValue<string>();
        var reference = new { model = "agent", input = new object[] { Ref(message), "and?" } };

        using var bob = await PostAsync(AccessKit.BobKey, reference);
        using var alice = await PostAsync(AccessKit.AliceKey, reference);
        using var root = await PostAsync(AccessKit.RootKey, reference);

        await bob.AssertErrorAsync(400, "item_not_found", "input[0].id");
        Assert.True(alice.IsSuccessStatusCode, await alice.Content.ReadAsStringAsync());
        Assert.True(root.IsSuccessStatusCode, await root.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Runs_ItemReference_ResolvesLikeResponses()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Text("stored answer"), FakeResponse.Text("run answer"));
        var stored = await harness.CreateAsync(new { model = "agent", input = "remember" });

        var (runId, _) = await harness.Client.StartRunAsync(new { input = new object[] { Ref(IdOf(stored, "message")), "go on" } });
        await harness.Client.ReadAllEventsAsync(runId);

        Assert.Equal(["assistant: stored answer", "user: go on"], Conversation(await harness.Upstream.WaitForRequestAsync(2)));
        await harness.Client.PostRunAsync(new { input = new object[] { Ref("msg_unknown"), "go on" } }).AssertErrorAsync(400, "item_not_found", "input[0].id");
    }

    [Fact]
    public async Task McpCallWithoutOutput_TheStoredResultIsSentUpstream()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        var (toolTurn, _) = await TwoStoredTurnsAsync(harness);
        var mcp = toolTurn["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == "mcp_call")!.AsObject();
        harness.Upstream.Enqueue(FakeResponse.Text("ok"));

        // As an agent SDK resends its history: the mcp_call item without its output.
        await harness.CreateAsync(new
        {
            model = "agent",
            input = new object[]
            {
                new { type = "mcp_call", id = mcp["id"]!.GetValue<string>(), server_label = "apiserver", name = "read_file", arguments = """{"path":"a.txt"}""" },
                "and now?",
            },
        });

        Assert.Equal(
        [
            $"assistant:  [call {mcp["id"]} read_file {{\"path\":\"a.txt\"}}]", $"tool {mcp["id"]}: {ResponsesHarness.FileText}", "user: and now?",
        ], Conversation(await harness.Upstream.WaitForRequestAsync(4)));
    }

    [Fact]
    public async Task McpCallWithoutOutput_UnknownId_Is400NamingOutputAndNothingIsSentUpstream()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new
        {
            model = "agent",
            input = new object[] { "hi", new { type = "mcp_call", id = "mcp_unknown", name = "read_file", arguments = "{}" }, "next" },
        }));

        await response.AssertErrorAsync(400, "missing_required_parameter", "input[1].output");
        Assert.Equal(0, harness.Upstream.CallCount);
    }
}
