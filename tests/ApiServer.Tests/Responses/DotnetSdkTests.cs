#pragma warning disable OPENAI001 // the Responses client is experimental in OpenAI 2.15
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using FakeUpstream;
using OpenAI.Responses;

namespace ApiServer.Tests.Responses;

/// <summary>The official OpenAI .NET SDK (NuGet OpenAI 2.15.0) against the server: create, stream, chain, get, delete.</summary>
public sealed class DotnetSdkTests
{
    internal static ResponsesClient Client(ResponsesHarness harness) => new(
        new ApiKeyCredential("test-key"),
        new ResponsesClientOptions { Endpoint = new Uri(harness.BaseAddress, "/v1"), RetryPolicy = new ClientRetryPolicy(0) });

    internal static JsonNode Raw<T>(ClientResult<T> result) => JsonNode.Parse(result.GetRawResponse().Content.ToString())!;

    [Fact]
    public async Task CreateResponseAsync_Offline_ReturnsCompletedTextThatGetReturnsUnchanged()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var client = Client(harness);

        var created = await client.CreateResponseAsync("agent", "hello sdk");
        var fetched = await client.GetResponseAsync(created.Value.Id);

        Assert.Equal(ResponseStatus.Completed, created.Value.Status);
        Assert.Equal("echo: hello sdk", created.Value.GetOutputText());
        Assert.True(created.Value.Usage.TotalTokenCount > 0);
        Assert.True(JsonNode.DeepEquals(Raw(created), Raw(fetched)), $"{Raw(created)}\n!=\n{Raw(fetched)}");
    }

    [Fact]
    public async Task CreateResponseStreamingAsync_Offline_YieldsKnownUpdatesInSpecOrder()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var client = Client(harness);

        var updates = new List<StreamingResponseUpdate>();
        await using (var stream = await client.CreateResponseStreamingAsync(new CreateResponseOptions("agent", [ResponseItem.CreateUserMessageItem("hi stream")]) { StreamingEnabled = true }))
        {
            await foreach (var update in stream)
                updates.Add(update);
        }

        Assert.All(updates, u => Assert.DoesNotContain("Unknown", u.GetType().Name));
        Assert.IsType<StreamingResponseCreatedUpdate>(updates[0]);
        Assert.IsType<StreamingResponseInProgressUpdate>(updates[1]);
        Assert.IsType<StreamingResponseOutputItemAddedUpdate>(updates[2]);
        Assert.IsType<StreamingResponseContentPartAddedUpdate>(updates[3]);
        var deltas = updates.OfType<StreamingResponseOutputTextDeltaUpdate>().ToList();
        Assert.Equal("echo: hi stream", string.Concat(deltas.Select(d => d.Delta)));
        Assert.Equal(Enumerable.Range(0, updates.Count), updates.Select(u => u.SequenceNumber));
        var completed = Assert.IsType<StreamingResponseCompletedUpdate>(updates[^1]);
        Assert.Equal("echo: hi stream", completed.Response.GetOutputText());
        var fetched = await client.GetResponseAsync(completed.Response.Id);
        Assert.Equal("echo: hi stream", fetched.Value.GetOutputText());
    }

    [Fact]
    public async Task CreateResponseAsync_ThreeChainedTurns_ThirdUpstreamRequestHoldsHiddenToolHistory()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_1", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("answer one"),
            FakeResponse.Text("answer two"),
            FakeResponse.Text("answer three"));
        var client = Client(harness);

        var first = await client.CreateResponseAsync("agent", "question one");
        var second = await client.CreateResponseAsync("agent", "question two", first.Value.Id);
        var third = await client.CreateResponseAsync("agent", "question three", second.Value.Id);

        var mcp = Assert.IsType<McpToolCallItem>(first.Value.OutputItems[0]);
        Assert.Equal(ResponsesHarness.FileText, mcp.ToolOutput);
        Assert.Equal("answer three", third.Value.GetOutputText());
        Assert.Equal(second.Value.Id, third.Value.PreviousResponseId);
        Assert.Equal(
        [
            "user: question one",
            """assistant:  [call call_1 read_file {"path":"a.txt"}]""",
            $"tool call_1: {ResponsesHarness.FileText}",
            "assistant: answer one",
            "user: question two",
            "assistant: answer two",
            "user: question three",
        ], ResponsesHarness.Transcript(harness.Upstream.Requests[3]).Where(l => !l.StartsWith("system:")));
    }

    [Fact]
    public async Task DeleteResponseAsync_StoredResponse_DeletesAndGetThen404()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var client = Client(harness);
        var created = await client.CreateResponseAsync("agent", "delete me");

        var deleted = await client.DeleteResponseAsync(created.Value.Id);

        Assert.True(deleted.Value.Deleted);
        Assert.Equal(created.Value.Id, deleted.Value.ResponseId);
        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.GetResponseAsync(created.Value.Id));
        Assert.Equal(404, error.Status);
        var again = await Assert.ThrowsAsync<ClientResultException>(() => client.DeleteResponseAsync(created.Value.Id));
        Assert.Equal(404, again.Status);
    }

    [Fact]
    public async Task CreateResponseAsync_ClientFunctionRoundTrip_AnswersAndListsCallAndOutput()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var client = Client(harness);
        var tool = ResponseTool.CreateFunctionTool("get_weather",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""), false, "Weather for a city");

        var first = await client.CreateResponseAsync(new CreateResponseOptions("agent", [ResponseItem.CreateUserMessageItem("""/tool get_weather {"city":"Oslo"}""")]) { Tools = { tool } });
        var call = Assert.IsType<FunctionCallResponseItem>(Assert.Single(first.Value.OutputItems));
        var second = await client.CreateResponseAsync(new CreateResponseOptions("agent", [ResponseItem.CreateFunctionCallOutputItem(call.CallId, "sunny, 21C")])
        {
            PreviousResponseId = first.Value.Id,
            Tools = { tool },
        });

        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Oslo"}""", call.FunctionArguments.ToString());
        Assert.Contains("returned: sunny, 21C", second.Value.GetOutputText());
        var items = new List<ResponseItem>();
        await foreach (var item in client.GetResponseInputItemsAsync(new ResponseItemCollectionOptions(second.Value.Id) { Order = ResponseItemCollectionOrder.Ascending }))
            items.Add(item);
        var listedCall = Assert.Single(items.OfType<FunctionCallResponseItem>());
        var listedOutput = Assert.Single(items.OfType<FunctionCallOutputResponseItem>());
        Assert.Equal(call.CallId, listedCall.CallId);
        Assert.Equal(call.CallId, listedOutput.CallId);
        Assert.Equal("sunny, 21C", listedOutput.FunctionOutput);
        Assert.True(items.IndexOf(listedCall) < items.IndexOf(listedOutput));
    }

    [Fact]
    public async Task CreateResponseAsync_ServerAndClientToolInOneTurn_ContinuationSeesBothResultsInOrder()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream()
                .ToolCall("call_s", "read_file", """{"path":"a.txt"}""")
                .ToolCall("call_c", "get_weather", """{"city":"Oslo"}""")
                .Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("it is sunny and the file says hello"));
        var client = Client(harness);
        var tool = ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}"""), false, null);

        var first = await client.CreateResponseAsync(new CreateResponseOptions("agent", [ResponseItem.CreateUserMessageItem("weather and file?")]) { Tools = { tool } });
        var second = await client.CreateResponseAsync(new CreateResponseOptions("agent", [ResponseItem.CreateFunctionCallOutputItem("call_c", "sunny")])
        {
            PreviousResponseId = first.Value.Id,
            Tools = { tool },
        });

        Assert.Equal(2, first.Value.OutputItems.Count);
        var mcp = Assert.IsType<McpToolCallItem>(first.Value.OutputItems[0]);
        Assert.Equal("read_file", mcp.ToolName);
        Assert.Equal(ResponsesHarness.FileText, mcp.ToolOutput);
        var call = Assert.IsType<FunctionCallResponseItem>(first.Value.OutputItems[1]);
        Assert.Equal("call_c", call.CallId);
        Assert.Equal("it is sunny and the file says hello", second.Value.GetOutputText());
        Assert.Equal(
        [
            "user: weather and file?",
            """assistant:  [call call_s read_file {"path":"a.txt"}] [call call_c get_weather {"city":"Oslo"}]""",
            $"tool call_s: {ResponsesHarness.FileText}",
            "tool call_c: sunny",
        ], ResponsesHarness.Transcript(harness.Upstream.Requests[1]).Where(l => !l.StartsWith("system:")));
    }
}
