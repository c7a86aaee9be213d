using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;

namespace ApiServer.Tests.Mcp;

/// <summary>
/// MCP servers a client names by <c>server_url</c> on /v1/responses: connected for the turn only when the URL is under an
/// AGENT_MCP_CLIENT_URLS prefix, with the request's headers, approval by default, and the session ended after the turn.
/// </summary>
public sealed class McpClientUrlTests
{
    // Generous: these wait for signals, the bound only keeps a broken build from hanging the run.
    private static readonly TimeSpan Signal = TimeSpan.FromSeconds(30);

    private static Task<ResponsesHarness> StartAsync(string prefix, string? config = null) =>
        ResponsesHarness.StartAsync(upstream: true, settings: new Dictionary<string, string?>
        {
            ["AGENT_MCP_CLIENT_URLS"] = prefix,
            ["AGENT_MCP_CONFIG"] = config ?? "",
        });

    private static object McpTool(InProcessMcpServer mcp, string label = "mine", object? approval = null, object? headers = null) => new
    {
        type = "mcp",
        server_label = label,
        server_url = mcp.Url,
        require_approval = approval ?? "never",
        headers,
    };

    private static FakeResponse[] EchoThenAnswer() =>
    [
        FakeResponse.Stream().ToolCall("call_1", "mine_echo", """{"message":"hi"}""").Finish("tool_calls"),
        FakeResponse.Text("done"),
    ];

    private static JsonNode Item(JsonObject response, string type) => response["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == type)!;

    [Fact]
    public async Task Create_AllowedServerUrl_ListsAndCallsItsToolsUnderTheLabel_SendsHeaders_AndEndsTheSession()
    {
        await using var mcp = await InProcessMcpServer.StartAsync(stateful: true);
        await using var harness = await StartAsync($"http://127.0.0.1:{mcp.Port}/");
        harness.Upstream.Enqueue(EchoThenAnswer());

        var response = await harness.CreateAsync(new
        {
            model = "m",
            input = "echo",
            tools = new[] { McpTool(mcp, headers: new Dictionary<string, string> { ["X-Probe"] = "token-1" }) },
        });

        var listing = Item(response, "mcp_list_tools");
        Assert.Equal("mine", listing["server_label"]!.GetValue<string>());
        Assert.Contains(listing["tools"]!.AsArray(), t => t!["name"]!.GetValue<string>() == "mine_echo");
        var call = Item(response, "mcp_call");
        Assert.Equal("mine", call["server_label"]!.GetValue<string>());
        Assert.Equal("Echo: hi", call["output"]!.GetValue<string>());
        Assert.Contains("token-1", mcp.Probes);
        Assert.Null(response["tools"]![0]!["headers"]);
        var offered = (await harness.Upstream.WaitForRequestAsync(1)).Body.GetProperty("tools").EnumerateArray()
            .Select(t => t.GetProperty("function").GetProperty("name").GetString()).ToList();
        Assert.Contains("mine_echo", offered);
        await mcp.SessionEnded.Task.WaitAsync(Signal);
    }

    [Fact]
    public async Task Stream_AllowedServerUrl_RendersListAndCallItems()
    {
        await using var mcp = await InProcessMcpServer.StartAsync(stateful: true);
        await using var harness = await StartAsync($"http://127.0.0.1:{mcp.Port}/");
        harness.Upstream.Enqueue(EchoThenAnswer());

        var stream = await harness.StreamAsync(new { model = "m", input = "echo", tools = new[] { McpTool(mcp) } });

        Assert.Contains("response.mcp_list_tools.completed", stream.Types);
        Assert.Contains("response.mcp_call.completed", stream.Types);
        var call = Item(stream.Terminal, "mcp_call");
        Assert.Equal("mine", call["server_label"]!.GetValue<string>());
        Assert.Equal("Echo: hi", call["output"]!.GetValue<string>());
        await mcp.SessionEnded.Task.WaitAsync(Signal);
    }

    [Fact]
    public async Task Create_ClientServerWithoutRequireApproval_AsksFirst_AndTheAnswerRunsWhenTheNextTurnNamesItAgain()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var harness = await StartAsync($"http://127.0.0.1:{mcp.Port}/");
        harness.Upstream.Enqueue(EchoThenAnswer());
        object tool = new { type = "mcp", server_label = "mine", server_url = mcp.Url };

        var first = await harness.CreateAsync(new { model = "m", input = "echo", tools = new[] { tool } });
        var request = Item(first, "mcp_approval_request");
        Assert.Equal("mine", request["server_label"]!.GetValue<string>());
        Assert.DoesNotContain(first["output"]!.AsArray(), i => i!["type"]!.GetValue<string>() == "mcp_call");

        var second = await harness.CreateAsync(new
        {
            model = "m",
            previous_response_id = first["id"]!.GetValue<string>(),
            input = new object[] { new { type = "mcp_approval_response", approval_request_id = request["id"]!.GetValue<string>(), approve = true } },
            tools = new[] { tool },
        });

        Assert.Equal("Echo: hi", Item(second, "mcp_call")["output"]!.GetValue<string>());
    }

    [Fact]
    public async Task Create_UrlOutsideThePrefixes_Is400()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var harness = await StartAsync($"http://127.0.0.1:{mcp.Port}/");

        var (status, error) = await ErrorAsync(harness, new
        {
            model = "m",
            input = "hi",
            tools = new[] { new { type = "mcp", server_label = "x", server_url = $"http://localhost:{mcp.Port}/mcp" } },
        });

        Assert.Equal(400, status);
        Assert.Equal("server_url_not_allowed", error["code"]!.GetValue<string>());
        Assert.Equal("tools[0].server_url", error["param"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Create_UnreachableAllowedUrl_Is424BeforeAnyOutput(bool stream)
    {
        var port = FreePort();
        await using var harness = await StartAsync("http://127.0.0.1:");

        var (status, error) = await ErrorAsync(harness, new
        {
            model = "m",
            input = "hi",
            stream,
            tools = new[] { new { type = "mcp", server_label = "gone", server_url = $"http://127.0.0.1:{port}/mcp" } },
        });

        Assert.Equal(424, status);
        Assert.Equal("mcp_server_unreachable", error["code"]!.GetValue<string>());
        Assert.Contains("'gone'", error["message"]!.GetValue<string>());
        Assert.Equal(0, harness.Upstream.CallCount);
    }

    [Fact]
    public async Task Create_LabelOfAConfiguredServer_Is400()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        var config = await McpTestServers.WriteConfigAsync(new Dictionary<string, object> { ["local"] = new { url = mcp.Url, type = "http" } });
        await using var harness = await StartAsync($"http://127.0.0.1:{mcp.Port}/", config);

        var (status, error) = await ErrorAsync(harness, new
        {
            model = "m",
            input = "hi",
            tools = new[] { McpTool(mcp, label: "local") },
        });

        Assert.Equal(400, status);
        Assert.Equal("duplicate_server_label", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Create_MoreClientServersThanAllowed_Is400()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var harness = await StartAsync($"http://127.0.0.1:{mcp.Port}/");

        var (status, error) = await ErrorAsync(harness, new
        {
            model = "m",
            input = "hi",
            tools = Enumerable.Range(0, 5).Select(i => McpTool(mcp, label: $"s{i}")).ToArray(),
        });

        Assert.Equal(400, status);
        Assert.Equal("too_many_mcp_servers", error["code"]!.GetValue<string>());
    }

    private static async Task<(int Status, JsonNode Error)> ErrorAsync(ResponsesHarness harness, object body)
    {
        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(body));
        return ((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
