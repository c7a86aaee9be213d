using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;

namespace ApiServer.Tests.Mcp;

/// <summary>MCP tools on /v1/responses: mcp_call and mcp_list_tools items, per-request narrowing, and what openai-node makes of them.</summary>
public sealed class McpResponsesTests
{
    private static async Task<ResponsesHarness> StartAsync(object? servers = null, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["AGENT_MCP_CONFIG"] = await McpTestServers.WriteConfigAsync(servers ?? new Dictionary<string, object> { ["everything"] = McpTestServers.Everything() }),
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
            settings[key] = value;
        var harness = await ResponsesHarness.StartAsync(upstream: true, settings: settings);
        await McpTestServers.SettledAsync(harness.Server);
        return harness;
    }

    private static FakeResponse[] EchoThenAnswer() =>
    [
        FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"hi"}""").Finish("tool_calls"),
        FakeResponse.Text("done"),
    ];

    [Fact]
    public async Task Create_McpToolCall_IsAnMcpCallItemNamingTheServerAfterOneListing()
    {
        await using var harness = await StartAsync();
        harness.Upstream.Enqueue(EchoThenAnswer());

        var first = await harness.CreateAsync(new { model = "m", input = "echo" });

        var output = first["output"]!.AsArray();
        Assert.Equal("mcp_list_tools", output[0]!["type"]!.GetValue<string>());
        Assert.Equal("everything", output[0]!["server_label"]!.GetValue<string>());
        Assert.Contains(output[0]!["tools"]!.AsArray(), t => t!["name"]!.GetValue<string>() == "everything_echo");
        var call = output.Single(i => i!["type"]!.GetValue<string>() == "mcp_call")!;
        Assert.Equal("everything", call["server_label"]!.GetValue<string>());
        Assert.Equal("Echo: hi", call["output"]!.GetValue<string>());
        Assert.Equal("completed", call["status"]!.GetValue<string>());

        harness.Upstream.Enqueue(FakeResponse.Text("again"));
        var second = await harness.CreateAsync(new { model = "m", input = "more", previous_response_id = first["id"]!.GetValue<string>() });
        Assert.DoesNotContain(second["output"]!.AsArray(), i => i!["type"]!.GetValue<string>() == "mcp_list_tools");
    }

    [Fact]
    public async Task Create_McpToolNamingOneServer_OffersOnlyItsAllowedTools()
    {
        await using var harness = await StartAsync();
        harness.Upstream.Enqueue(FakeResponse.Text("ok"));

        await harness.CreateAsync(new
        {
            model = "m",
            input = "hi",
            tools = new object[] { new { type = "mcp", server_label = "everything", allowed_tools = new[] { "get-sum" } } },
        });

        var offered = (await harness.Upstream.WaitForRequestAsync(1)).Body.GetProperty("tools").EnumerateArray()
            .Select(t => t.GetProperty("function").GetProperty("name").GetString()).ToList();
        Assert.Equal(["everything_get-sum"], offered);
    }

    [Theory]
    [InlineData("""{"type":"mcp","server_label":"nope"}""", "unknown_mcp_server")]
    [InlineData("""{"type":"mcp","server_label":"x","server_url":"https://evil.example/mcp"}""", "server_url_not_allowed")]
    [InlineData("""{"type":"mcp","server_label":"everything","require_approval":"sometimes"}""", "invalid_value")]
    [InlineData("""{"type":"mcp","server_label":"everything","surprise":1}""", "unknown_parameter")]
    public async Task Create_BadMcpTool_Is400WithCode(string tool, string code)
    {
        await using var harness = await StartAsync();

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body($$"""{"model":"m","input":"hi","tools":[{{tool}}]}"""));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal(code, body["error"]!["code"]!.GetValue<string>());
        Assert.Equal(0, harness.Upstream.CallCount);
    }

    [Fact]
    public async Task OpenAiNode_ReadsMcpListToolsAndMcpCallItems_StreamedAndNot()
    {
        await using var harness = await StartAsync();
        harness.Upstream.Enqueue([.. EchoThenAnswer(), .. EchoThenAnswer()]);

        var created = (await NodeClient.RunAsync("responses-create.mjs", harness.BaseAddress, new { model = "m", input = "echo" })).Success;
        var streamed = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress, new { model = "m", input = "echo" })).Success;

        var types = created["created"]!["output"]!.AsArray().Select(i => i!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(["mcp_list_tools", "mcp_call", "message"], types);
        var events = streamed["events"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        Assert.Contains("response.mcp_list_tools.completed", events);
        Assert.Contains("response.mcp_call.completed", events);
        Assert.Equal("everything", streamed["final"]!["output"]![1]!["server_label"]!.GetValue<string>());
    }

    [Fact]
    public async Task StreamableHttp_EverythingServer_ToolWorksOverHttp()
    {
        var port = FreePort();
        var server = new System.Diagnostics.ProcessStartInfo("node", [McpTestServers.EverythingScript, "streamableHttp"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            Environment = { ["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        };
        await McpTestServers.EnsureInstalledAsync();
        using var process = System.Diagnostics.Process.Start(server)!;
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) => { if (e.Data?.Contains("listening", StringComparison.OrdinalIgnoreCase) == true) listening.TrySetResult(); };
        process.BeginErrorReadLine();
        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await using var harness = await StartAsync(new Dictionary<string, object>
            {
                ["remote"] = new { url = $"http://127.0.0.1:{port}/mcp", type = "http" },
            });
            harness.Upstream.Enqueue(
                FakeResponse.Stream().ToolCall("call_1", "remote_echo", """{"message":"over http"}""").Finish("tool_calls"),
                FakeResponse.Text("done"));

            var response = await harness.CreateAsync(new { model = "m", input = "echo" });

            var call = response["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == "mcp_call")!;
            Assert.Equal("remote", call["server_label"]!.GetValue<string>());
            Assert.Equal("Echo: over http", call["output"]!.GetValue<string>());
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
