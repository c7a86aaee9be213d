using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;
using static ApiServer.Tests.Conversations.ConversationsKit;

namespace ApiServer.Tests.Conversations;

/// <summary>
/// An item_reference added to a conversation (in a turn's input or through the items route) keeps what it named: the
/// conversation stores the referenced item's content under an id of its own, so later turns don't depend on the reference.
/// </summary>
public sealed class ConversationItemReferenceTests
{
    [Fact]
    public async Task TurnInput_ItemReference_IsKeptAsTheReferencedItem_ForLaterTurns()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Text("The code is 42."), FakeResponse.Text("42."), FakeResponse.Text("Still 42."));
        var stored = await harness.CreateAsync(new { model = "agent", input = "Remember the code 42.", store = true });
        var referenced = stored["output"]![0]!["id"]!.GetValue<string>();
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;

        await harness.CreateAsync(new
        {
            model = "agent",
            conversation = id,
            input = new object[] { new { type = "item_reference", id = referenced }, new { role = "user", content = "What is the code?" } },
        });
        // Later turns read the conversation, not the response the reference named.
        using (var deleted = await harness.Client.DeleteAsync($"/v1/responses/{stored["id"]}"))
            Assert.True(deleted.IsSuccessStatusCode);
        await harness.CreateAsync(new { model = "agent", conversation = id, input = "And again?" });

        Assert.Equal(["assistant: The code is 42.", "user: What is the code?"], History(harness.Upstream.Requests[1]));
        Assert.Equal(["assistant: The code is 42.", "user: What is the code?", "assistant: 42.", "user: And again?"], History(harness.Upstream.Requests[2]));
        var data = (await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc&limit=100")).GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["message", "message", "message", "message", "message"], data.Select(i => i.GetProperty("type").GetString()));
        Assert.Equal("assistant", data[0].GetProperty("role").GetString());
        Assert.Equal("The code is 42.", Text(data[0]));
        var ids = data.Select(i => i.GetProperty("id").GetString()!).ToList();
        Assert.DoesNotContain(referenced, ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public async Task ItemsRoute_ItemReference_StoresTheReferencedItem_AndTheNextTurnSeesIt()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Text("Blue is my answer."), FakeResponse.Text("You said blue."));
        var stored = await harness.CreateAsync(new { model = "agent", input = "Pick a colour.", store = true });
        var referenced = stored["output"]![0]!["id"]!.GetValue<string>();
        var id = (await CreateAsync(harness.Client, new { items = new object[] { new { type = "item_reference", id = referenced } } })).GetProperty("id").GetString()!;

        var added = await PostAsync(harness.Client, $"/v1/conversations/{id}/items", new { items = new object[] { new { type = "item_reference", id = referenced } } });
        await harness.CreateAsync(new { model = "agent", conversation = id, input = "What did you say?" });

        var item = added.GetProperty("data")[0];
        Assert.Equal("message", item.GetProperty("type").GetString());
        Assert.NotEqual(referenced, item.GetProperty("id").GetString());
        Assert.Equal("Blue is my answer.", Text(item));
        var listed = await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc");
        Assert.Equal(["Blue is my answer.", "Blue is my answer.", "What did you say?", "You said blue."], listed.GetProperty("data").EnumerateArray().Select(Text));
        var ids = Ids(listed);
        Assert.Equal(ids.Length, ids.Distinct().Count());
        Assert.Equal(item.GetRawText(), (await GetAsync(harness.Client, $"/v1/conversations/{id}/items/{ids[1]}")).GetRawText());
        Assert.Equal(["assistant: Blue is my answer.", "assistant: Blue is my answer.", "user: What did you say?"], History(harness.Upstream.Requests[1]));
    }

    [Fact]
    public async Task TurnInput_McpCallWithoutOutput_IsKeptWithTheStoredOutput()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Text("Read it."), FakeResponse.Text("Once."), FakeResponse.Text("Twice."));
        var stored = await harness.CreateAsync(new
        {
            model = "agent",
            store = true,
            input = new object[]
            {
                new { type = "mcp_call", id = "mcp_client", server_label = "files", name = "read_file", arguments = "{}", output = "the file text" },
                new { role = "user", content = "Summarise." },
            },
        });
        var call = Ids(await GetAsync(harness.Client, $"/v1/responses/{stored["id"]}/input_items?order=asc"))[0];
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;

        await harness.CreateAsync(new
        {
            model = "agent",
            conversation = id,
            input = new object[] { new { type = "mcp_call", id = call, server_label = "files", name = "read_file", arguments = "{}" }, new { role = "user", content = "Again." } },
        });
        await harness.CreateAsync(new { model = "agent", conversation = id, input = "Once more." });

        var history = History(harness.Upstream.Requests[2]).ToList();
        Assert.Equal(5, history.Count);
        Assert.StartsWith("tool ", history[1]);
        Assert.EndsWith(": the file text", history[1]);
        var item = (await GetAsync(harness.Client, $"/v1/conversations/{id}/items?order=asc")).GetProperty("data")[0];
        Assert.Equal("the file text", item.GetProperty("output").GetString());
        Assert.NotEqual(call, item.GetProperty("id").GetString());
    }

    [Fact]
    public async Task UnknownReference_IsA400_OnTheItemsRouteAndInATurn_AndAddsNothing()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var id = (await CreateAsync(harness.Client, new { })).GetProperty("id").GetString()!;

        using var items = await harness.Client.PostAsync($"/v1/conversations/{id}/items",
            TestJson.Body(new { items = new object[] { new { role = "user", content = "hi" }, new { type = "item_reference", id = "msg_missing" } } }));
        using var turn = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new
        {
            model = "agent",
            conversation = id,
            input = new object[] { new { type = "item_reference", id = "msg_missing" }, new { role = "user", content = "hi" } },
        }));

        Assert.Equal(400, (int)items.StatusCode);
        Assert.Equal("items[1].id", (await items.ReadJsonAsync()).GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(400, (int)turn.StatusCode);
        var error = (await turn.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("input[0].id", error.GetProperty("param").GetString());
        Assert.Equal("item_not_found", error.GetProperty("code").GetString());
        Assert.Empty(Ids(await GetAsync(harness.Client, $"/v1/conversations/{id}/items")));
        Assert.Empty(harness.Upstream.Requests);
    }
}
