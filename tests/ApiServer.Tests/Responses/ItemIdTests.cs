using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>An item gets its id once, when first rendered or received, and keeps it in output, GET, input_items and run events.</summary>
public sealed class ItemIdTests
{
    private static async Task<JsonArray> InputItemsAsync(ResponsesHarness harness, string id)
    {
        using var response = await harness.Client.GetAsync($"/v1/responses/{id}/input_items?order=asc&limit=100");
        var page = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        Assert.False(page["has_more"]!.GetValue<bool>());
        return page["data"]!.AsArray();
    }

    private static string[] Json(IEnumerable<JsonNode?> items) => [.. items.Select(i => i!.ToJsonString())];

    [Fact]
    public async Task ChainOfThree_WithServerToolCallInTheMiddle_EveryItemKeepsItsIdEverywhere()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Text("first answer"),
            FakeResponse.Stream().ToolCall("call_r", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("second answer"),
            FakeResponse.Text("third answer"));

        var first = await harness.CreateAsync(new { model = "agent", input = "one" });
        var streamed = new List<JsonObject>();
        string? secondId = null;
        await harness.StreamAsync(new { model = "agent", input = "two", previous_response_id = first["id"]!.GetValue<string>() }, e =>
        {
            switch (e["type"]!.GetValue<string>())
            {
                case "response.output_item.done":
                    streamed.Add(e);
                    break;
                case "response.completed":
                    secondId = e["response"]!["id"]!.GetValue<string>();
                    break;
            }
        });
        var secondResponse = (await harness.GetAsync(secondId!))!;
        var outputs = new List<JsonArray> { first["output"]!.AsArray(), secondResponse["output"]!.AsArray() };
        // The streamed items are the ones the stored response holds.
        Assert.Equal(Json(streamed.Select(e => e["item"])), Json(outputs[1]));
        Assert.Equal(["mcp_call", "message"], outputs[1].Select(i => i!["type"]!.GetValue<string>()));
        var third = await harness.CreateAsync(new { model = "agent", input = "three", previous_response_id = secondResponse["id"]!.GetValue<string>() });
        outputs.Add(third["output"]!.AsArray());

        var ids = new[] { first["id"]!.GetValue<string>(), secondResponse["id"]!.GetValue<string>(), third["id"]!.GetValue<string>() };
        for (var i = 0; i < 3; i++)
            Assert.Equal(Json(outputs[i]), Json((await harness.GetAsync(ids[i]))!["output"]!.AsArray()));
        var inputs = new List<JsonArray>();
        foreach (var id in ids)
            inputs.Add(await InputItemsAsync(harness, id));
        // Each response's input items are its parent's input items, then its parent's output exactly as returned, then its own input.
        for (var i = 1; i < 3; i++)
        {
            Assert.Equal([.. Json(inputs[i - 1]), .. Json(outputs[i - 1])], Json(inputs[i].Take(inputs[i].Count - 1)));
            Assert.Equal("user", inputs[i][^1]!["role"]!.GetValue<string>());
        }
        var allIds = inputs[2].Concat(outputs[2]).Select(i => i!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(allIds.Count, allIds.Distinct().Count());
    }

    [Fact]
    public async Task Run_StoredResponse_HasTheItemIdsItsEventsCarried()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_r", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("the file says hello"));

        var (runId, _) = await harness.Client.StartRunAsync(new { input = "read a.txt" });
        var events = await harness.Client.ReadAllEventsAsync(runId);

        var response = (await harness.GetAsync(events[^1].Data.GetProperty("response_id").GetString()!))!;
        var output = response["output"]!.AsArray();
        var call = output.Single(i => i!["type"]!.GetValue<string>() == "mcp_call")!["id"]!.GetValue<string>();
        var message = output.Single(i => i!["type"]!.GetValue<string>() == "message")!["id"]!.GetValue<string>();
        string ItemOf(string name) => events.Where(e => e.Name == name).Select(e => e.Data.GetProperty("item_id").GetString()!).Distinct().Single();
        Assert.Equal(call, ItemOf("tool.started"));
        Assert.Equal(call, ItemOf("tool.completed"));
        Assert.Equal(message, ItemOf("message.delta"));
    }
}
