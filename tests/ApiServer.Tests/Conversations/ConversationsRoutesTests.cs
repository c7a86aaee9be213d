using System.Net;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using static ApiServer.Tests.Conversations.ConversationsKit;

namespace ApiServer.Tests.Conversations;

public sealed class ConversationsRoutesTests
{
    [Fact]
    public async Task Create_WithItemsAndMetadata_StoresThemInOpenAisShape()
    {
        await using var server = await TestServer.StartAsync();
        var created = await CreateAsync(server.Client, new
        {
            metadata = new { topic = "demo" },
            items = new object[]
            {
                new { role = "user", content = "hi" },
                new { type = "message", role = "assistant", content = new[] { new { type = "output_text", text = "hello" } } },
            },
        });

        var id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("conv_", id);
        Assert.Equal("conversation", created.GetProperty("object").GetString());
        Assert.Equal("demo", created.GetProperty("metadata").GetProperty("topic").GetString());
        Assert.True(created.GetProperty("created_at").GetInt64() > 0);
        Assert.Equal(created.GetRawText(), (await GetAsync(server.Client, $"/v1/conversations/{id}")).GetRawText());

        var items = await GetAsync(server.Client, $"/v1/conversations/{id}/items?order=asc");
        var data = items.GetProperty("data");
        Assert.Equal("list", items.GetProperty("object").GetString());
        Assert.Equal(2, data.GetArrayLength());
        Assert.All(data.EnumerateArray(), i => Assert.StartsWith("msg_", i.GetProperty("id").GetString()));
        Assert.Equal(("message", "user", "completed", "input_text", "hi"), Shape(data[0]));
        Assert.Equal(("message", "assistant", "completed", "output_text", "hello"), Shape(data[1]));
        Assert.Equal(data[0].GetProperty("id").GetString(), items.GetProperty("first_id").GetString());
        Assert.False(items.GetProperty("has_more").GetBoolean());
    }

    private static (string, string, string, string, string) Shape(JsonElement item) => (item.GetProperty("type").GetString()!, item.GetProperty("role").GetString()!,
        item.GetProperty("status").GetString()!, item.GetProperty("content")[0].GetProperty("type").GetString()!, Text(item));

    [Fact]
    public async Task Create_WithoutBody_IsAnEmptyConversation()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.PostAsync("/v1/conversations", null);
        var created = await OkAsync(response);

        Assert.Equal("{}", created.GetProperty("metadata").GetRawText());
        var items = await GetAsync(server.Client, $"/v1/conversations/{created.GetProperty("id").GetString()}/items");
        Assert.Equal(0, items.GetProperty("data").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, items.GetProperty("first_id").ValueKind);
    }

    [Fact]
    public async Task ItemsList_PagesWithLimitOrderAndAfter()
    {
        await using var server = await TestServer.StartAsync();
        var id = (await CreateAsync(server.Client, new { items = Enumerable.Range(0, 5).Select(i => new { role = "user", content = $"m{i}" }) }))
            .GetProperty("id").GetString()!;
        var all = Ids(await GetAsync(server.Client, $"/v1/conversations/{id}/items?order=asc"));

        var first = await GetAsync(server.Client, $"/v1/conversations/{id}/items?order=asc&limit=2");
        Assert.Equal(all[..2], Ids(first));
        Assert.True(first.GetProperty("has_more").GetBoolean());
        Assert.Equal(all[1], first.GetProperty("last_id").GetString());
        var second = await GetAsync(server.Client, $"/v1/conversations/{id}/items?order=asc&limit=2&after={all[1]}");
        Assert.Equal(all[2..4], Ids(second));
        Assert.True(second.GetProperty("has_more").GetBoolean());
        var last = await GetAsync(server.Client, $"/v1/conversations/{id}/items?order=asc&limit=2&after={all[3]}");
        Assert.Equal(all[4..], Ids(last));
        Assert.False(last.GetProperty("has_more").GetBoolean());

        // Newest first by default, as OpenAI lists them.
        var newest = await GetAsync(server.Client, $"/v1/conversations/{id}/items?limit=3");
        Assert.Equal([all[4], all[3], all[2]], Ids(newest));
        Assert.True(newest.GetProperty("has_more").GetBoolean());
        var older = await GetAsync(server.Client, $"/v1/conversations/{id}/items?limit=3&order=desc&after={all[2]}");
        Assert.Equal([all[1], all[0]], Ids(older));
        Assert.False(older.GetProperty("has_more").GetBoolean());
    }

    [Fact]
    public async Task UpdateAppendRetrieveAndDelete_EachRouteAnswersInOpenAisShape()
    {
        await using var server = await TestServer.StartAsync();
        var id = (await CreateAsync(server.Client, new { metadata = new { a = "1" } })).GetProperty("id").GetString()!;

        var updated = await PostAsync(server.Client, $"/v1/conversations/{id}", new { metadata = new { b = "2" } });
        Assert.Equal("""{"b":"2"}""", updated.GetProperty("metadata").GetRawText());
        Assert.Equal("""{"b":"2"}""", (await GetAsync(server.Client, $"/v1/conversations/{id}")).GetProperty("metadata").GetRawText());
        var cleared = await PostAsync(server.Client, $"/v1/conversations/{id}", new { metadata = (object?)null });
        Assert.Equal("{}", cleared.GetProperty("metadata").GetRawText());

        var added = await PostAsync(server.Client, $"/v1/conversations/{id}/items", new
        {
            items = new object[]
            {
                new { type = "function_call", call_id = "call_1", name = "get_weather", arguments = """{"city":"Oslo"}""" },
                new { type = "function_call_output", call_id = "call_1", output = "sunny" },
            },
        });
        var addedIds = Ids(added);
        Assert.StartsWith("fc_", addedIds[0]);
        Assert.StartsWith("fco_", addedIds[1]);
        Assert.Equal(addedIds[1], added.GetProperty("last_id").GetString());
        Assert.False(added.GetProperty("has_more").GetBoolean());

        var item = await GetAsync(server.Client, $"/v1/conversations/{id}/items/{addedIds[1]}");
        Assert.Equal(added.GetProperty("data")[1].GetRawText(), item.GetRawText());
        Assert.Equal("sunny", item.GetProperty("output").GetString());

        using (var deleteItem = await server.Client.DeleteAsync($"/v1/conversations/{id}/items/{addedIds[0]}"))
        {
            var conversation = await OkAsync(deleteItem);
            Assert.Equal(id, conversation.GetProperty("id").GetString());
            Assert.Equal("conversation", conversation.GetProperty("object").GetString());
        }
        Assert.Equal([addedIds[1]], Ids(await GetAsync(server.Client, $"/v1/conversations/{id}/items")));
        using (var again = await server.Client.GetAsync($"/v1/conversations/{id}/items/{addedIds[0]}"))
            await again.AssertErrorAsync(404, "not_found", "item_id");

        using (var delete = await server.Client.DeleteAsync($"/v1/conversations/{id}"))
            Assert.Equal($$"""{"id":"{{id}}","deleted":true,"object":"conversation.deleted"}""", (await OkAsync(delete)).GetRawText());
        using (var gone = await server.Client.GetAsync($"/v1/conversations/{id}"))
            await gone.AssertErrorAsync(404, "not_found", "conversation_id");
        using (var goneItems = await server.Client.GetAsync($"/v1/conversations/{id}/items"))
            await goneItems.AssertErrorAsync(404, "not_found", "conversation_id");
    }

    [Fact]
    public async Task ByteCap_AppendPastIt_Is400AndAddsNothing()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_CONVERSATION_MAX_BYTES"] = "2048" });
        var id = (await CreateAsync(server.Client, new { items = new[] { new { role = "user", content = new string('a', 1000) } } })).GetProperty("id").GetString()!;

        using var response = await server.Client.PostAsync($"/v1/conversations/{id}/items",
            TestJson.Body(new { items = new[] { new { role = "user", content = new string('b', 1500) } } }));

        await response.AssertErrorAsync(400, "conversation_too_large", "items");
        Assert.Single(Ids(await GetAsync(server.Client, $"/v1/conversations/{id}/items")));
    }

    [Theory]
    [InlineData("GET", "/v1/conversations/abc", 400, "conversation_id")]
    [InlineData("GET", "/v1/conversations/conv_missing", 404, "conversation_id")]
    [InlineData("DELETE", "/v1/conversations/conv_missing", 404, "conversation_id")]
    [InlineData("GET", "/v1/conversations/conv_missing/items", 404, "conversation_id")]
    [InlineData("GET", "/v1/conversations/{id}/items?limit=0", 400, "limit")]
    [InlineData("GET", "/v1/conversations/{id}/items?limit=101", 400, "limit")]
    [InlineData("GET", "/v1/conversations/{id}/items?limit=ten", 400, "limit")]
    [InlineData("GET", "/v1/conversations/{id}/items?order=up", 400, "order")]
    [InlineData("GET", "/v1/conversations/{id}/items?after=msg_nope", 400, "after")]
    [InlineData("GET", "/v1/conversations/{id}/items?include=message.output_text.logprobs", 400, "include")]
    [InlineData("GET", "/v1/conversations/{id}/items/msg_nope", 404, "item_id")]
    [InlineData("DELETE", "/v1/conversations/{id}/items/msg_nope", 404, "item_id")]
    [InlineData("POST", "/v1/conversations|{\"metadata\":{\"k\":1}}", 400, "metadata.k")]
    [InlineData("POST", "/v1/conversations|{\"metadata\":{\"k\":\"VALUE513\"}}", 400, "metadata.k")]
    [InlineData("POST", "/v1/conversations|{\"metadata\":{\"KEY65\":\"v\"}}", 400, "metadata")]
    [InlineData("POST", "/v1/conversations|{\"metadata\":PAIRS17}", 400, "metadata")]
    [InlineData("POST", "/v1/conversations|{\"items\":\"hi\"}", 400, "items")]
    [InlineData("POST", "/v1/conversations|{\"items\":ITEMS21}", 400, "items")]
    [InlineData("POST", "/v1/conversations|{\"items\":[{\"type\":\"computer_call\"}]}", 400, "items[0].type")]
    [InlineData("POST", "/v1/conversations|{\"items\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 400, "items[0].role")]
    [InlineData("POST", "/v1/conversations|{\"title\":\"x\"}", 400, "title")]
    [InlineData("POST", "/v1/conversations/{id}|{}", 400, "metadata")]
    [InlineData("POST", "/v1/conversations/{id}/items|{}", 400, "items")]
    [InlineData("POST", "/v1/conversations/{id}/items|{\"items\":[{\"type\":\"function_call_output\",\"call_id\":\"c\"}]}", 400, "items[0].output")]
    public async Task BadInput_IsAnErrorNamingItsParam(string method, string target, int status, string param)
    {
        await using var server = await TestServer.StartAsync();
        var id = (await CreateAsync(server.Client, new { })).GetProperty("id").GetString()!;
        var parts = target.Replace("{id}", id).Split('|');
        var body = parts.Length > 1
            ? parts[1].Replace("VALUE513", new string('v', 513)).Replace("KEY65", new string('k', 65))
                .Replace("PAIRS17", JsonSerializer.Serialize(Enumerable.Range(0, 17).ToDictionary(i => $"k{i}", i => "v")))
                .Replace("ITEMS21", JsonSerializer.Serialize(Enumerable.Range(0, 21).Select(i => new { role = "user", content = "x" })))
            : null;
        using var request = new HttpRequestMessage(new HttpMethod(method), parts[0]) { Content = body is null ? null : TestJson.Body(body) };

        using var response = await server.Client.SendAsync(request);

        await response.AssertErrorAsync(status, param: param);
    }

    [Fact]
    public async Task MetadataWithAnUnpairedSurrogate_Is400OnCreateAndUpdate()
    {
        await using var server = await TestServer.StartAsync();
        var id = (await CreateAsync(server.Client, new { })).GetProperty("id").GetString()!;
        const string body = """{"metadata":{"a":"\ud800"}}""";

        await (await server.Client.PostAsync("/v1/conversations", TestJson.Body(body))).AssertErrorAsync(400, "invalid_json");
        await (await server.Client.PostAsync($"/v1/conversations/{id}", TestJson.Body(body))).AssertErrorAsync(400, "invalid_json");
    }

    [Fact]
    public async Task ResponsesWithConversationId_UnknownIsA404NamingConversation()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.PostAsync("/v1/responses",
            TestJson.Body(new { input = "hi", conversation = "conv_0123456789abcdef0123456789abcdef" }));
        await response.AssertErrorAsync(404, "not_found", "conversation");

        // A value not shaped like an issued id is a hermes-style name, as before this API existed.
        using var named = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "hi", conversation = "conv_chat" }));
        Assert.Equal("conv_chat", (await OkAsync(named)).GetProperty("conversation").GetProperty("id").GetString());
    }

    [Fact]
    public async Task ResponsesWithConversationAndPreviousResponseId_Is400()
    {
        await using var server = await TestServer.StartAsync();
        var id = (await CreateAsync(server.Client, new { })).GetProperty("id").GetString()!;
        using var first = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "hi" }));
        var previous = (await OkAsync(first)).GetProperty("id").GetString();

        using var response = await server.Client.PostAsync("/v1/responses",
            TestJson.Body(new { input = "again", conversation = new { id }, previous_response_id = previous }));

        await response.AssertErrorAsync(400, "invalid_value", "conversation");
        Assert.Empty(Ids(await GetAsync(server.Client, $"/v1/conversations/{id}/items")));
    }
}
