using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// The Vercel AI SDK (tests/clients/node: ai 6, @ai-sdk/openai 3) with its default provider, which speaks the Responses API
/// with store: true and so resends earlier assistant items (messages, reasoning, provider-executed tool calls) as
/// item_reference items, as every useChat app does from its second turn on.
/// </summary>
public sealed class AiSdkTests
{
    [Fact]
    public async Task DefaultResponsesProvider_ThreeTurnsResendingResponseMessages_AnswersWithTheWholeHistory()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().Reasoning("two and two").Content("4").Finish("stop").Usage(10, 5),
            FakeResponse.Stream().ToolCall("call_r", "read_file", """{"path":"a.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("The file says hello file"),
            FakeResponse.Text("It was 4"));

        var result = (await NodeClient.RunAsync("ai-sdk-conversation.mjs", harness.BaseAddress, new
        {
            model = "agent",
            prompts = new[] { "What is 2+2?", "Read a.txt", "What was the first answer?" },
        })).Success;

        var turns = result["turns"]!.AsArray();
        Assert.Equal(["4", "The file says hello file", "It was 4"], turns.Select(t => t!["text"]!.GetValue<string>()));
        // The SDK shows reasoning only from summary parts (reasoning summaries are another change); the item still goes back by reference.
        Assert.Equal("mcp.read_file", turns[1]!["toolCalls"]![0]!["name"]!.GetValue<string>());
        Assert.True(turns[1]!["toolCalls"]![0]!["providerExecuted"]!.GetValue<bool>());

        // Every item of the first two responses' output went back by reference, and only by reference.
        var outputIds = new List<string>();
        foreach (var turn in turns.Take(2))
        {
            var stored = (await harness.GetAsync(turn!["responseId"]!.GetValue<string>()))!;
            outputIds.AddRange(stored["output"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()));
        }
        var lastInput = result["sent"]!.AsArray()[^1]!["input"]!.AsArray();
        var references = lastInput.Where(i => i!["type"]?.GetValue<string>() == "item_reference").Select(i => i!["id"]!.GetValue<string>()).ToHashSet();
        Assert.Equal(4, outputIds.Count); // reasoning, message; mcp_call, message
        Assert.Equal(outputIds.ToHashSet(), references);
        Assert.Equal(["user", "user", "user"], lastInput.Where(i => i!["role"] is not null).Select(i => i!["role"]!.GetValue<string>()));

        // The model saw the whole conversation on the third turn, the server tool's call and result included.
        var mcp = outputIds[2];
        Assert.Equal(
        [
            "user: What is 2+2?", "assistant: 4", "user: Read a.txt",
            $"assistant:  [call {mcp} read_file {{\"path\":\"a.txt\"}}]", $"tool {mcp}: {ResponsesHarness.FileText}",
            "assistant: The file says hello file", "user: What was the first answer?",
        ], ResponsesHarness.Transcript(await harness.Upstream.WaitForRequestAsync(4)).Where(l => !l.StartsWith("system: ")));
    }
}
