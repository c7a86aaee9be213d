using System.Net;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Jobs;

namespace ApiServer.Tests.Http;

/// <summary>
/// NUL (U+0000) in client text is a 400 that names the field on both backends (PostgreSQL cannot store it, SQLite can), and
/// NUL in text the server produces itself is kept as U+FFFD instead of failing the write.
/// </summary>
public sealed class NulCharacterTests
{
    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task NulInABodyField_Is400NamingTheField(string backend)
    {
        await using var database = await TestDatabase.ForAsync(backend);
        await using var server = await TestServer.StartAsync(TestDatabase.ServerSettings(database));
        var client = server.Client;
        var stored = (await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi"}"""))).ReadJsonAsync()).GetProperty("id").GetString()!;

        await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","instructions":"x\u0000y"}""")))
            .AssertErrorAsync(400, "invalid_value", "instructions");
        await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","previous_response_id":"resp_\u0000"}""")))
            .AssertErrorAsync(400, "invalid_value", "previous_response_id");
        await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","conversation":{"id":"conv_\u0000"}}""")))
            .AssertErrorAsync(400, "invalid_value", "conversation.id");
        await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":[{"type":"item_reference","id":"msg_\u0000"}]}""")))
            .AssertErrorAsync(400, "invalid_value", "input[0].id");
        await (await client.PostAsync("/v1/runs", TestJson.Body("""{"input":"ab","instructions":"\u0000"}""")))
            .AssertErrorAsync(400, "invalid_value", "instructions");
        await (await client.PostAsync("/api/jobs", TestJson.Body("""{"name":"n\u0000","schedule":"every 1h","prompt":"p"}""")))
            .AssertErrorAsync(400, "invalid_value", "name");
        using var chat = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = TestJson.Body("""{"model":"agent","messages":[{"role":"user","content":"sec\u0000ond"}]}"""),
        };
        chat.Headers.Add("X-Session-Id", "nul-session");
        await (await client.SendAsync(chat)).AssertErrorAsync(400, "invalid_value", "messages[0].content");
        // A NUL in a property name is refused too; the field is the object holding it.
        await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","metadata":{"a\u0000":"b"}}""")))
            .AssertErrorAsync(400, "invalid_value", "metadata");

        using var stillThere = await client.GetAsync($"/v1/responses/{stored}");
        Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode);
    }

    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task NulInAQueryParameter_Is400NamingIt_NeverA500(string backend)
    {
        await using var database = await TestDatabase.ForAsync(backend);
        await using var server = await TestServer.StartAsync(TestDatabase.ServerSettings(database));
        var client = server.Client;
        var stored = (await (await client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","conversation":"named"}"""))).ReadJsonAsync()).GetProperty("id").GetString()!;

        await (await client.GetAsync($"/v1/responses/{stored}/input_items?after=%00")).AssertErrorAsync(400, "invalid_value", "after");
        await (await client.GetAsync("/v1/runs/run_x/events?after=%00")).AssertErrorAsync(400, "invalid_value", "after");
        await (await client.GetAsync($"/v1/conversations/conv_x/items?after=%00")).AssertErrorAsync(400, "invalid_value", "after");
        await (await client.GetAsync("/api/jobs?include_disabled=%00")).AssertErrorAsync(400, "invalid_value", "include_disabled");
    }

    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task AnEscapedBackslashBeforeU0000_IsOrdinaryText_AndIsStored(string backend)
    {
        await using var database = await TestDatabase.ForAsync(backend);
        await using var server = await TestServer.StartAsync(TestDatabase.ServerSettings(database));

        // "\\u0000" in JSON is a backslash followed by "u0000": six printable characters, not NUL.
        using var created = await server.Client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","instructions":"a\\u0000b"}"""));
        var id = (await created.ReadJsonAsync()).GetProperty("id").GetString()!;
        var read = await (await server.Client.GetAsync($"/v1/responses/{id}")).ReadJsonAsync();

        Assert.Equal("a\\u0000b", read.GetProperty("instructions").GetString());
    }

    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task AFiringWhoseOutputHoldsNul_IsRecordedCompleted_WithTheNulReplaced(string backend)
    {
        await using var database = await TestDatabase.ForAsync(backend);
        await using var jobs = await JobsHarness.StartAsync(settings: TestDatabase.ServerSettings(database), tool: new NulTool());
        var id = (await jobs.CreateAsync(new { name = "nul", schedule = "every 1h", prompt = "/tool nul {}" })).GetProperty("id").GetString()!;

        await jobs.PostActionAsync(id, "run", HttpStatusCode.Accepted);
        var runs = await jobs.WaitForRunsAsync(id, r => r.Count > 0 && JobsHarness.Status(r[0]) is not ("running" or "pending"), "the firing to end");

        Assert.Equal("completed", JobsHarness.Status(runs[0]));
        Assert.Equal("Tool nul returned: a\uFFFDb", runs[0].GetProperty("output_preview").GetString());
        Assert.Equal(JsonValueKind.String, runs[0].GetProperty("response_id").ValueKind);
    }

    private sealed class NulTool : IAgentTool
    {
        public ToolDefinition Definition { get; } = new("nul", "Returns text with a NUL in it.", JsonDocument.Parse("""{"type":"object"}""").RootElement);

        public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) => Task.FromResult(ToolResult.Ok("a\0b"));
    }
}
