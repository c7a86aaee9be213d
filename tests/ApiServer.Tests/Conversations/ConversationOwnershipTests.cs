using ApiServer.Tests.Infrastructure;
using static ApiServer.Tests.Access.AccessKit;
using static ApiServer.Tests.Conversations.ConversationsKit;

namespace ApiServer.Tests.Conversations;

public sealed class ConversationOwnershipTests
{
    [Fact]
    public async Task AnotherOwnersConversation_IsAnsweredLikeAnUnknownId_OnEveryRoute()
    {
        var file = WriteKeysFile(File(Entry("alice", AliceKey, "responses"), Entry("bob", BobKey, "responses"), Entry("root", RootKey, "admin")));
        await using var server = await StartAsync(file);
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);
        using var root = server.AuthorizedClient(RootKey);
        var id = (await CreateAsync(alice, new { items = new[] { new { role = "user", content = "mine" } } })).GetProperty("id").GetString()!;
        var item = Ids(await GetAsync(alice, $"/v1/conversations/{id}/items"))[0];
        const string unknown = "conv_0123456789abcdef0123456789abcdef";

        foreach (var (method, path, body, param) in new (string, string, string?, string)[]
        {
            ("GET", "/v1/conversations/{id}", null, "conversation_id"),
            ("POST", "/v1/conversations/{id}", """{"metadata":{"k":"v"}}""", "conversation_id"),
            ("DELETE", "/v1/conversations/{id}", null, "conversation_id"),
            ("GET", "/v1/conversations/{id}/items", null, "conversation_id"),
            ("POST", "/v1/conversations/{id}/items", """{"items":[{"role":"user","content":"x"}]}""", "conversation_id"),
            ("GET", $"/v1/conversations/{{id}}/items/{item}", null, "conversation_id"),
            ("DELETE", $"/v1/conversations/{{id}}/items/{item}", null, "conversation_id"),
            ("POST", "/v1/responses", """{"input":"hi","conversation":"{id}"}""", "conversation"),
        })
        {
            var theirs = await SendAsync(bob, method, path.Replace("{id}", id), body?.Replace("{id}", id));
            var missing = await SendAsync(bob, method, path.Replace("{id}", unknown), body?.Replace("{id}", unknown));
            Assert.Equal(404, theirs.Status);
            Assert.Equal(missing.Body.Replace(unknown, id), theirs.Body);
            Assert.Contains($"\"param\":\"{param}\"", theirs.Body);
        }

        // Nothing bob tried changed alice's conversation; an admin key sees it.
        Assert.Equal([item], Ids(await GetAsync(alice, $"/v1/conversations/{id}/items")));
        Assert.Equal("{}", (await GetAsync(root, $"/v1/conversations/{id}")).GetProperty("metadata").GetRawText());
    }

    [Fact]
    public async Task AnotherOwnersItem_ReferencedIntoAConversation_IsAnsweredLikeAnUnknownId()
    {
        var file = WriteKeysFile(File(Entry("alice", AliceKey, "responses"), Entry("bob", BobKey, "responses")));
        await using var server = await StartAsync(file);
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);
        var stored = await PostAsync(alice, "/v1/responses", new { input = "alice's secret", store = true });
        var item = Ids(await GetAsync(alice, $"/v1/responses/{stored.GetProperty("id").GetString()}/input_items"))[0];
        var id = (await CreateAsync(bob, new { })).GetProperty("id").GetString()!;
        const string unknown = "msg_0123456789abcdef0123456789abcdef";

        foreach (var (path, body) in new[]
        {
            ($"/v1/conversations/{id}/items", """{"items":[{"type":"item_reference","id":"{item}"}]}"""),
            ("/v1/conversations", """{"items":[{"type":"item_reference","id":"{item}"}]}"""),
            ("/v1/responses", $$"""{"conversation":"{{id}}","input":[{"type":"item_reference","id":"{item}"},{"role":"user","content":"hi"}]}"""),
        })
        {
            var theirs = await SendAsync(bob, "POST", path, body.Replace("{item}", item));
            var missing = await SendAsync(bob, "POST", path, body.Replace("{item}", unknown));
            Assert.Equal(400, theirs.Status);
            Assert.Equal(missing.Body.Replace(unknown, item), theirs.Body);
            Assert.Contains("item_not_found", theirs.Body);
        }
        Assert.Empty(Ids(await GetAsync(bob, $"/v1/conversations/{id}/items")));
    }

    private static async Task<(int Status, string Body)> SendAsync(HttpClient client, string method, string path, string? body)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body is null ? null : TestJson.Body(body) };
        using var response = await client.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
