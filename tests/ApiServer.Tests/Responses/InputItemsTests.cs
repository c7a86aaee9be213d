using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>GET /v1/responses/{id}/input_items: order, limit, the after cursor, has_more, first_id and last_id.</summary>
public sealed class InputItemsTests
{
    private static async Task<JsonObject> ListAsync(ResponsesHarness harness, string id, string query = "")
    {
        using var response = await harness.Client.GetAsync($"/v1/responses/{id}/input_items{query}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"input_items answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private static string[] Describe(JsonObject page) => [.. page["data"]!.AsArray().Select(Describe)];

    private static string Describe(JsonNode? item) => item!["type"]!.GetValue<string>() switch
    {
        "message" => $"{item["role"]}: {item["content"]![0]!["text"]}",
        "function_call" => $"call {item["call_id"]} {item["name"]}",
        "function_call_output" => $"output {item["call_id"]}: {item["output"]}",
        "mcp_call" => $"mcp_call {item["name"]}: {item["output"]}",
        var other => other,
    };

    /// <summary>Follows last_id until has_more is false; checks the list envelope of every page on the way.</summary>
    private static async Task<List<JsonNode>> PageThroughAsync(ResponsesHarness harness, string id, int limit, string order)
    {
        var all = new List<JsonNode>();
        string? after = null;
        for (var pages = 0; pages < 50; pages++)
        {
            var page = await ListAsync(harness, id, $"?limit={limit}&order={order}" + (after is null ? "" : $"&after={after}"));
            var data = page["data"]!.AsArray();
            Assert.Equal("list", page["object"]!.GetValue<string>());
            Assert.InRange(data.Count, 1, limit);
            Assert.Equal(data[0]!["id"]!.GetValue<string>(), page["first_id"]!.GetValue<string>());
            Assert.Equal(data[^1]!["id"]!.GetValue<string>(), page["last_id"]!.GetValue<string>());
            all.AddRange(data.Select(i => i!.DeepClone()));
            if (!page["has_more"]!.GetValue<bool>())
                return all;
            after = page["last_id"]!.GetValue<string>();
        }
        throw new Xunit.Sdk.XunitException("Paging never ended.");
    }

    [Fact]
    public async Task ListInputItems_DefaultQuery_ChainNewestFirstWithoutOwnOutput()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var first = await harness.CreateAsync(new { model = "agent", input = "one" });
        var second = await harness.CreateAsync(new { model = "agent", input = "two", previous_response_id = first["id"]!.GetValue<string>() });

        var page = await ListAsync(harness, second["id"]!.GetValue<string>());

        Assert.Equal(["user: two", "assistant: echo: one", "user: one"], Describe(page));
        Assert.False(page["has_more"]!.GetValue<bool>());
        Assert.Equal(page["data"]![0]!["id"]!.GetValue<string>(), page["first_id"]!.GetValue<string>());
        Assert.Equal(page["data"]![2]!["id"]!.GetValue<string>(), page["last_id"]!.GetValue<string>());
        Assert.Equal("input_text", page["data"]![0]!["content"]![0]!["type"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("asc")]
    [InlineData("desc")]
    public async Task ListInputItems_LimitOneWithAfter_PagesThroughEveryItemOnce(string order)
    {
        await using var harness = await ResponsesHarness.StartAsync();
        string? previous = null;
        foreach (var text in new[] { "a", "b", "c" })
            previous = (await harness.CreateAsync(new { model = "agent", input = text, previous_response_id = previous }))["id"]!.GetValue<string>();

        var all = await PageThroughAsync(harness, previous!, 1, order);
        var expected = new[] { "user: a", "assistant: echo: a", "user: b", "assistant: echo: b", "user: c" };

        Assert.Equal(order == "asc" ? expected : expected.Reverse(), all.Select(Describe));
        var whole = await ListAsync(harness, previous!, $"?order={order}");
        Assert.Equal(whole["data"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()), all.Select(i => i["id"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("asc")]
    [InlineData("desc")]
    public async Task ListInputItems_ParallelCallsInOneMessage_PagesKeepLimitAndLoseNothing(string order)
    {
        // One assistant message with a server and a client tool call is listed as the items the output showed (an mcp_call
        // with its result, a function_call): paging must neither exceed the limit nor drop items when last_id names one.
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_s", "read_file", """{"path":"a.txt"}""").ToolCall("call_c", "get_weather", """{"city":"Oslo"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("done"));
        var first = await harness.CreateAsync(new { model = "agent", input = "both", tools = new[] { ResponsesHarness.WeatherTool } });
        var second = await harness.CreateAsync(new
        {
            model = "agent",
            previous_response_id = first["id"]!.GetValue<string>(),
            input = new object[] { new { type = "function_call_output", call_id = "call_c", output = "sunny" } },
            tools = new[] { ResponsesHarness.WeatherTool },
        });
        var expected = new[]
        {
            "user: both", $"mcp_call read_file: {ResponsesHarness.FileText}", "call call_c get_weather", "output call_c: sunny",
        };

        var all = await PageThroughAsync(harness, second["id"]!.GetValue<string>(), 2, order);

        Assert.Equal(order == "asc" ? expected : expected.Reverse(), all.Select(Describe));
        Assert.Equal(all.Count, all.Select(i => i["id"]!.GetValue<string>()).Distinct().Count());
    }

    [Theory]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=101", "limit")]
    [InlineData("?limit=ten", "limit")]
    [InlineData("?order=sideways", "order")]
    [InlineData("?after=msg_nowhere", "after")]
    public async Task ListInputItems_BadQuery_Returns400WithParam(string query, string param)
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var created = await harness.CreateAsync(new { model = "agent", input = "x" });

        using var response = await harness.Client.GetAsync($"/v1/responses/{created["id"]}/input_items{query}");

        await response.AssertErrorAsync(400, "invalid_value", param);
    }

    [Fact]
    public async Task ListInputItems_UnknownResponse_Returns404()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await harness.Client.GetAsync("/v1/responses/resp_missing/input_items");

        await response.AssertErrorAsync(404, "response_not_found", "response_id");
    }

    [Theory]
    [InlineData("?stream=true", 400, "unsupported_parameter")]
    [InlineData("?stream=yes", 400, "invalid_value")]
    [InlineData("?stream=false", 200, null)]
    public async Task Get_StreamQuery_IsRefusedRatherThanAnsweredWithPlainJson(string query, int status, string? code)
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var id = (string)(await harness.CreateAsync(new { model = "agent", input = "hi" }))["id"]!;

        using var response = await harness.Client.GetAsync($"/v1/responses/{id}{query}");

        Assert.Equal(status, (int)response.StatusCode);
        if (code is null)
            Assert.Equal(id, (string?)(await response.ReadJsonAsync()).GetProperty("id").GetString());
        else
            await response.AssertErrorAsync(status, code, "stream");
    }
}
