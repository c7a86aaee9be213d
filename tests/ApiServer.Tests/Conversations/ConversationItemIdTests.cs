using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using static ApiServer.Tests.Conversations.ConversationsKit;

namespace ApiServer.Tests.Conversations;

/// <summary>An item is given its id once, when first received: a turn's input has the same id in its conversation and in its response.</summary>
public sealed class ConversationItemIdTests
{
    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task TurnInput_IsListedUnderOneId_InTheConversationAndInTheResponsesInputItems(string backend)
    {
        await using var database = await TestDatabase.ForAsync(backend);
        await using var server = await TestServer.StartAsync(TestDatabase.ServerSettings(database));
        var id = (await CreateAsync(server.Client, new { items = new object[] { new { role = "user", content = "Remember 7." } } })).GetProperty("id").GetString()!;

        var first = await PostAsync(server.Client, "/v1/responses", new { model = "agent", input = "What did I say?", conversation = id });
        var second = await PostAsync(server.Client, "/v1/responses", new
        {
            model = "agent",
            conversation = id,
            input = new object[]
            {
                new { role = "developer", content = "Be brief." },
                new { type = "function_call", call_id = "call_1", name = "lookup", arguments = "{}" },
                new { type = "function_call_output", call_id = "call_1", output = "7" },
                new { role = "user", content = "And now?" },
            },
        });

        var conversation = Ids(await GetAsync(server.Client, $"/v1/conversations/{id}/items?order=asc&limit=100"));
        var firstInput = Ids(await GetAsync(server.Client, $"/v1/responses/{first.GetProperty("id").GetString()}/input_items?order=asc"));
        var secondInput = Ids(await GetAsync(server.Client, $"/v1/responses/{second.GetProperty("id").GetString()}/input_items?order=asc"));
        var secondOutput = second.GetProperty("output").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToArray();

        Assert.Single(firstInput);
        Assert.Equal(firstInput[0], conversation[1]);
        // The developer message is not a response input item (it layers after the instructions); the conversation keeps it too.
        Assert.Equal(3, secondInput.Length);
        var turn = conversation.SkipWhile(i => i != secondInput[0]).ToArray();
        Assert.Equal([.. secondInput, .. secondOutput], turn);
        Assert.Equal(conversation.Length, conversation.Distinct().Count());
    }
}
