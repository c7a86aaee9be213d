using System.Net;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Responses;

public sealed class ConversationConcurrencyTests
{
    [Fact]
    public async Task ConcurrentTurnsOnOneConversation_AllStayInTheChain()
    {
        await using var server = await TestServer.StartAsync();
        var turns = Enumerable.Range(0, 8).Select(i =>
            server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = $"turn {i}", conversation = "c-concurrent" }))).ToList();
        foreach (var response in await Task.WhenAll(turns))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        using var last = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "final", conversation = "c-concurrent" }));
        var id = (await last.ReadJsonAsync()).GetProperty("id").GetString();
        using var items = await server.Client.GetAsync($"/v1/responses/{id}/input_items?limit=100&order=asc");

        var text = (await items.ReadJsonAsync()).GetRawText();
        for (var i = 0; i < 8; i++)
            Assert.Contains($"turn {i}", text);
    }
}
