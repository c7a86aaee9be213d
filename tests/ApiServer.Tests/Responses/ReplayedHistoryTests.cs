using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// History as agent frameworks replay it: LangChain's empty assistant message before its function_call items, the fields
/// clients copy from earlier output (status, annotations, logprobs), and what exactly reaches the upstream.
/// </summary>
public sealed class ReplayedHistoryTests
{
    private static JsonElement Messages(RecordedRequest request) => request.Body.GetProperty("messages");

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The messages exactly as sent, without the system prompt.</summary>
    private static string Canonical(JsonElement messages) =>
        JsonSerializer.Serialize(messages.EnumerateArray().Where(m => m.GetProperty("role").GetString() != "system"), Relaxed);

    [Fact]
    public async Task Create_EmptyAssistantMessageBeforeCalls_MergesIntoTheCallingTurn()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("It is sunny.").Finish("stop"));

        // What LangChain's Responses converter sends after a tool turn, with the fields copied from the earlier output.
        await harness.CreateAsync(JsonNode("""
        {
          "model": "agent", "store": false, "include": [], "text": {},
          "tools": [{"type":"function","name":"get_weather","strict":null,"parameters":{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"city":{"type":"string"}}}}],
          "input": [
            {"role":"user","content":"Weather in Oslo?"},
            {"type":"message","role":"assistant","id":"msg_1","status":"completed","content":[{"type":"output_text","text":"","annotations":[],"logprobs":[]}]},
            {"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}","status":"completed"},
            {"type":"function_call_output","call_id":"call_1","output":"sunny","status":"completed"}
          ]
        }
        """));

        Assert.Equal(
            """[{"role":"user","content":"Weather in Oslo?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}]""",
            Canonical(Messages(harness.Upstream.Requests[0])));
        var tool = harness.Upstream.Requests[0].Body.GetProperty("tools")[0].GetProperty("function");
        Assert.Equal("http://json-schema.org/draft-07/schema#", tool.GetProperty("parameters").GetProperty("$schema").GetString());
        Assert.False(tool.TryGetProperty("strict", out _));
    }

    [Fact]
    public async Task Create_AssistantTextThenCalls_OneAssistantTurnWithTextAndCalls()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("Both sunny.").Finish("stop"));

        await harness.CreateAsync(JsonNode("""
        {
          "model": "agent",
          "tools": [{"type":"function","name":"get_weather","strict":true,"parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],
          "input": [
            {"role":"user","content":"Oslo and Rome?"},
            {"type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Checking.","annotations":[]}]},
            {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}","status":"completed"},
            {"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{}","status":"completed"},
            {"type":"function_call_output","call_id":"call_1","output":"sunny"},
            {"type":"function_call_output","call_id":"call_2","output":"sunny"}
          ]
        }
        """));

        Assert.Equal(
            ["user: Oslo and Rome?", "assistant: Checking. [call call_1 get_weather {}] [call call_2 get_weather {}]", "tool call_1: sunny", "tool call_2: sunny"],
            ResponsesHarness.Transcript(harness.Upstream.Requests[0]).Where(l => !l.StartsWith("system:")));
    }

    [Fact]
    public async Task ChatCompletions_EmptyAssistantMessage_NeverSentUpstream()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("fine").Finish("stop"));

        using var response = await harness.Client.PostAsync("/v1/chat/completions", TestJson.Body("""
        {"model":"agent","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":""},{"role":"user","content":"still there?"}]}
        """));

        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        Assert.Equal("""[{"role":"user","content":"hi"},{"role":"user","content":"still there?"}]""", Canonical(Messages(harness.Upstream.Requests[0])));
    }

    [Fact]
    public async Task ChatCompletions_EmptyAssistantMessageLast_StillTheMissingUserMessageError()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await harness.Client.PostAsync("/v1/chat/completions", TestJson.Body("""
        {"model":"agent","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":""}]}
        """));

        await response.AssertErrorAsync(400, "missing_user_message", "messages[1].role");
    }

    private static System.Text.Json.Nodes.JsonNode JsonNode(string json) => System.Text.Json.Nodes.JsonNode.Parse(json)!;
}
