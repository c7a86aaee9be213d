using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;
using static ApiServer.Tests.Conversations.ConversationsKit;

namespace ApiServer.Tests.Mcp;

/// <summary>How approval requests and answers read back: input_items and conversation items in OpenAI's shapes, never as function calls.</summary>
public sealed class McpApprovalItemsTests
{
    private static async Task<JsonElement[]> InputItemsAsync(ResponsesHarness harness, string responseId) =>
        [.. (await GetAsync(harness.Client, $"/v1/responses/{responseId}/input_items?order=asc&limit=100")).GetProperty("data").EnumerateArray()];

    private static string Type(JsonElement item) => item.GetProperty("type").GetString()!;

    [Fact]
    public async Task ChainedApproval_InputItemsListTheRequestAsShown_ThenTheAnswer()
    {
        await using var harness = await McpApprovalTests.StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"hi"}""").Finish("tool_calls"), FakeResponse.Text("done"));
        var first = await harness.CreateAsync(new { model = "m", input = "echo" });
        var approvalId = first["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == "mcp_approval_request")!["id"]!.GetValue<string>();

        var second = await harness.CreateAsync(new
        {
            model = "m",
            previous_response_id = first["id"]!.GetValue<string>(),
            input = new object[] { new { type = "mcp_approval_response", approval_request_id = approvalId, approve = false, reason = "not now" } },
        });

        var items = await InputItemsAsync(harness, second["id"]!.GetValue<string>());
        Assert.Equal(["message", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response"], items.Select(Type));
        Assert.Equal(approvalId, items[2].GetProperty("id").GetString());
        Assert.Equal((approvalId, false, "not now"),
            (items[3].GetProperty("approval_request_id").GetString(), items[3].GetProperty("approve").GetBoolean(), items[3].GetProperty("reason").GetString()));
        Assert.StartsWith("mcpa_", items[3].GetProperty("id").GetString());
    }

    [Fact]
    public async Task StatelessReplay_Stored_ListsTheReplayedRequestUnderItsIdAndTheAnswer()
    {
        await using var harness = await McpApprovalTests.StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Text("done"));

        var response = await harness.CreateAsync(new
        {
            model = "m",
            input = new object[]
            {
                new { type = "message", role = "user", content = "echo" },
                new { type = "mcp_approval_request", id = "mcpr_replayed", server_label = "everything", name = "everything_echo", arguments = """{"message":"again"}""" },
                new { type = "mcp_approval_response", approval_request_id = "mcpr_replayed", approve = true },
            },
        });

        var items = await InputItemsAsync(harness, response["id"]!.GetValue<string>());
        Assert.Equal(["message", "mcp_approval_request", "mcp_approval_response"], items.Select(Type));
        Assert.Equal(("mcpr_replayed", "everything", "everything_echo", """{"message":"again"}"""),
            (items[1].GetProperty("id").GetString(), items[1].GetProperty("server_label").GetString(), items[1].GetProperty("name").GetString(),
             items[1].GetProperty("arguments").GetString()));
        Assert.True(items[2].GetProperty("approve").GetBoolean());
    }

    [Fact]
    public async Task ApprovalOnAStoredConversation_TheAnswerHasOneIdInTheConversationAndTheResponse()
    {
        await using var harness = await McpApprovalTests.StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"hi"}""").Finish("tool_calls"), FakeResponse.Text("done"));
        var conversation = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;
        var first = await harness.CreateAsync(new { model = "m", input = "echo", conversation });
        var approvalId = first["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == "mcp_approval_request")!["id"]!.GetValue<string>();

        var second = await harness.CreateAsync(new
        {
            model = "m",
            conversation,
            input = new object[] { new { type = "mcp_approval_response", approval_request_id = approvalId, approve = true } },
        });

        var answer = Assert.Single(await InputItemsAsync(harness, second["id"]!.GetValue<string>()));
        var items = (await GetAsync(harness.Client, $"/v1/conversations/{conversation}/items?order=asc&limit=100")).GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["message", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call", "message"], items.Select(Type));
        Assert.Equal(answer.GetProperty("id").GetString(), items[3].GetProperty("id").GetString());
        Assert.Equal(approvalId, items[4].GetProperty("approval_request_id").GetString());
    }
}
