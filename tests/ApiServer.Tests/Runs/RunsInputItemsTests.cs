using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;

namespace ApiServer.Tests.Runs;

/// <summary>POST /v1/runs takes the Responses input shape with the same parser and chain resolver as /v1/responses.</summary>
public sealed class RunsInputItemsTests
{
    [Fact]
    public async Task Start_FunctionCallOutputAfterPreviousResponse_ContinuesTheChainLikeResponses()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_w", "get_weather", """{"city":"Oslo"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("It is sunny in Oslo."));
        var first = await harness.CreateAsync(new { model = "agent", input = "weather?", tools = new[] { ResponsesHarness.WeatherTool } });
        var firstId = first["id"]!.GetValue<string>();

        var (runId, _) = await harness.Client.StartRunAsync(new
        {
            previous_response_id = firstId,
            input = new object[] { new { type = "function_call_output", call_id = "call_w", output = "sunny" } },
        });
        var completed = (await harness.Client.ReadAllEventsAsync(runId))[^1];

        Assert.Equal("run.completed", completed.Name);
        Assert.Equal("It is sunny in Oslo.", completed.Data.GetProperty("output").GetString());
        var sent = (await harness.Upstream.WaitForRequestAsync(2)).Body.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["user", "assistant", "tool"], sent.Where(m => m.GetProperty("role").GetString() != "system").Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("call_w", sent[^1].GetProperty("tool_call_id").GetString());

        var responseId = completed.Data.GetProperty("response_id").GetString();
        var stored = JsonNode.Parse(await harness.Client.GetStringAsync($"/v1/responses/{responseId}"))!;
        Assert.Equal(firstId, stored["previous_response_id"]!.GetValue<string>());
        var items = JsonNode.Parse(await harness.Client.GetStringAsync($"/v1/responses/{responseId}/input_items?order=asc"))!["data"]!.AsArray();
        Assert.Equal(["message", "function_call", "function_call_output"], items.Select(i => i!["type"]!.GetValue<string>()));
        Assert.Equal("sunny", items[^1]!["output"]!.GetValue<string>());
    }

    [Fact]
    public async Task Start_SystemMessageInInput_LayeredAfterInheritedInstructionsAsInResponses()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Text("one"), FakeResponse.Text("two"), FakeResponse.Text("three"));
        var first = await harness.CreateAsync(new { model = "agent", input = "hi", instructions = "Be brief." });
        var input = new object[] { new { role = "system", content = "Answer in French." }, new { role = "user", content = "again" } };

        await harness.CreateAsync(new { model = "agent", input, previous_response_id = first["id"]!.GetValue<string>() });
        var (runId, _) = await harness.Client.StartRunAsync(new { input, previous_response_id = first["id"]!.GetValue<string>() });
        await harness.Client.ReadAllEventsAsync(runId);

        var fromResponses = SystemText((await harness.Upstream.WaitForRequestAsync(2)).Body);
        var fromRun = SystemText((await harness.Upstream.WaitForRequestAsync(3)).Body);
        Assert.Contains("Be brief.\n\nAnswer in French.", fromResponses);
        Assert.Equal(fromResponses, fromRun);
    }

    private static string SystemText(JsonElement body) =>
        body.GetProperty("messages").EnumerateArray().First(m => m.GetProperty("role").GetString() == "system").GetProperty("content").GetString()!;
}
