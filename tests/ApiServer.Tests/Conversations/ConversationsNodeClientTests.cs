using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;

namespace ApiServer.Tests.Conversations;

/// <summary>openai-node's <c>client.conversations.*</c> (tests/clients/node/conversations.mjs) against the server.</summary>
public sealed class ConversationsNodeClientTests
{
    private static string S(JsonNode? node) => node!.GetValue<string>();

    [Fact]
    public async Task EveryConversationsMethod_IsAcceptedByTheSdk()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var result = (await NodeClient.RunAsync("conversations.mjs", harness.BaseAddress, new { })).Success;

        var id = S(result["created"]!["id"]);
        Assert.StartsWith("conv_", id);
        Assert.Equal("demo", S(result["retrieved"]!["metadata"]!["topic"]));
        Assert.Equal("renamed", S(result["updated"]!["metadata"]!["topic"]));
        var added = result["added"]!["data"]!.AsArray();
        Assert.Equal(2, added.Count);
        Assert.Equal("output_text", S(added[0]!["content"]![0]!["type"]));
        Assert.Equal(id, S(result["response"]!["conversation"]!["id"]));
        Assert.Equal("echo: What is my name?", S(result["response"]!["output_text"]));

        // Paged two at a time through all five items: the first, the two added, the turn's input and its answer.
        var paged = result["paged"]!.AsArray();
        Assert.Equal(["My name is Ada.", "Hello Ada.", "Remember me.", "What is my name?", "echo: What is my name?"],
            paged.Select(i => S(i!["content"]![0]!["text"])));
        Assert.Equal(S(result["response"]!["output"]![0]!["id"]), S(paged[4]!["id"]));
        Assert.Equal([S(paged[4]!["id"]), S(paged[3]!["id"])], result["firstPage"]!["data"]!.AsArray().Select(i => S(i!["id"])));
        Assert.True(result["firstPage"]!["has_more"]!.GetValue<bool>());

        Assert.Equal(S(added[0]!["id"]), S(result["item"]!["id"]));
        Assert.Equal(id, S(result["afterItemDelete"]!["id"]));
        Assert.Equal(paged.Where(i => S(i!["id"]) != S(added[0]!["id"])).Select(i => S(i!["id"])), result["remaining"]!.AsArray().Select(S));
        Assert.True(result["deleted"]!["deleted"]!.GetValue<bool>());
        Assert.Equal("conversation.deleted", S(result["deleted"]!["object"]));
        Assert.Equal(404, result["afterDelete"]!["status"]!.GetValue<int>());
        Assert.Equal("conversation_id", S(result["afterDelete"]!["param"]));
    }
}
