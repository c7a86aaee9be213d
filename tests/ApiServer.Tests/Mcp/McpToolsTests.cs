using System.Text.Json;
using ApiServer.Mcp;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;

namespace ApiServer.Tests.Mcp;

/// <summary>The agent with real MCP servers from npm: server-everything over stdio, server-filesystem, and a broken one.</summary>
public sealed class McpToolsTests
{
    private static async Task<ChatHarness> StartAsync(object servers, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?> { ["AGENT_MCP_CONFIG"] = await McpTestServers.WriteConfigAsync(servers) };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
            settings[key] = value;
        var chat = await ChatHarness.StartAsync(settings);
        await McpTestServers.SettledAsync(chat.Server);
        return chat;
    }

    /// <summary>The model calls <paramref name="tool"/> once, then answers; returns what it was told the tool returned.</summary>
    private static async Task<string> ToolResultAsync(ChatHarness chat, string tool, string arguments)
    {
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", tool, arguments).Finish("tool_calls"), FakeResponse.Text("ok"));
        var (response, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("go")));
        Assert.Equal(200, (int)response.StatusCode);
        return await McpTestServers.ToolResultSentUpstreamAsync(chat.FakeUpstream);
    }

    [Fact]
    public async Task DetailedHealth_WithKeysConfigured_ShowsAServersLastErrorOnlyToAKeyHolder()
    {
        await using var chat = await StartAsync(new Dictionary<string, object> { ["broken"] = new { command = "/nonexistent/mcp-server" } },
            new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var authorized = chat.Server.AuthorizedClient();

        var open = JsonDocument.Parse(await chat.Server.Client.GetStringAsync("/health/detailed")).RootElement.GetProperty("mcp_servers")[0];
        var keyHolder = JsonDocument.Parse(await authorized.GetStringAsync("/health/detailed")).RootElement.GetProperty("mcp_servers")[0];

        Assert.Equal(("broken", "failed"), (open.GetProperty("name").GetString(), open.GetProperty("state").GetString()));
        Assert.Equal(JsonValueKind.Null, open.GetProperty("last_error").ValueKind);
        Assert.False(string.IsNullOrEmpty(keyHolder.GetProperty("last_error").GetString()));
    }

    [Fact]
    public async Task ListTools_WithOneBrokenServer_ShowsTheWorkingServersToolsAndTheFailure()
    {
        await using var chat = await StartAsync(new Dictionary<string, object>
        {
            ["everything"] = McpTestServers.Everything(),
            ["broken"] = new { command = "/nonexistent/mcp-server", env = new { SECRET_VALUE = "do-not-show" } },
        });

        using var response = await chat.Client.GetAsync("/v1/tools");
        var text = await response.Content.ReadAsStringAsync();
        var body = JsonDocument.Parse(text).RootElement;

        Assert.Equal(200, (int)response.StatusCode);
        var echo = body.GetProperty("data").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "everything_echo");
        Assert.Equal("mcp", echo.GetProperty("source").GetString());
        Assert.Equal("everything", echo.GetProperty("server_label").GetString());
        Assert.False(echo.GetProperty("requires_approval").GetBoolean());
        Assert.Equal("object", echo.GetProperty("input_schema").GetProperty("type").GetString());
        var servers = body.GetProperty("mcp_servers").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!);
        Assert.Equal("ready", servers["everything"].GetProperty("state").GetString());
        Assert.True(servers["everything"].GetProperty("tool_count").GetInt32() > 5);
        Assert.Equal("failed", servers["broken"].GetProperty("state").GetString());
        Assert.False(string.IsNullOrEmpty(servers["broken"].GetProperty("last_error").GetString()));
        Assert.DoesNotContain("do-not-show", text);

        var health = await chat.Client.GetStringAsync("/health/detailed");
        Assert.Contains("\"mcp_servers\"", health);
        Assert.DoesNotContain("do-not-show", health);
    }

    [Fact]
    public async Task Chat_ModelCallsMcpTool_ResultReachesTheModel()
    {
        await using var chat = await StartAsync(new Dictionary<string, object> { ["everything"] = McpTestServers.Everything() });
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"hi there"}""").Finish("tool_calls"),
            FakeResponse.Text("done"));

        var (response, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("echo")));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("done", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var second = await chat.FakeUpstream.WaitForRequestAsync(2);
        var offered = second.Body.GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("function").GetProperty("name").GetString());
        Assert.Contains("everything_echo", offered);
        var toolMessage = second.Body.GetProperty("messages").EnumerateArray().Last(m => m.GetProperty("role").GetString() == "tool");
        Assert.Equal("Echo: hi there", toolMessage.GetProperty("content").GetString());
    }

    [Fact]
    public async Task Chat_ArgumentsBreakTheSchema_ModelGetsAToolErrorWithoutCallingTheServer()
    {
        await using var chat = await StartAsync(new Dictionary<string, object> { ["everything"] = McpTestServers.Everything() });
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":5}""").Finish("tool_calls"),
            FakeResponse.Text("ok"));

        var (response, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("echo")));

        Assert.Equal(200, (int)response.StatusCode);
        var second = await chat.FakeUpstream.WaitForRequestAsync(2);
        var toolMessage = second.Body.GetProperty("messages").EnumerateArray().Last(m => m.GetProperty("role").GetString() == "tool");
        Assert.StartsWith("Invalid arguments for 'everything_echo'", toolMessage.GetProperty("content").GetString());
    }

    [Fact]
    public async Task Chat_ImageContent_IsDescribedNotDropped()
    {
        await using var chat = await StartAsync(new Dictionary<string, object> { ["everything"] = McpTestServers.Everything() });
        Assert.Contains("[image, image/png", await ToolResultAsync(chat, "everything_get-tiny-image", "{}"));
    }

    [Fact]
    public async Task Filesystem_AllowedToolsOnly_ReadsAFileInItsRoot()
    {
        var root = ChatHarness.CreateWorkspace();
        await File.WriteAllTextAsync(Path.Combine(root, "note.txt"), "from the filesystem server");
        await using var chat = await StartAsync(new Dictionary<string, object>
        {
            ["files"] = new { command = "node", args = new[] { McpTestServers.FilesystemScript, root }, allowed_tools = new[] { "read_text_file" } },
        });
        var hub = chat.Server.Service<McpHub>();
        Assert.Equal(["files_read_text_file"], hub.Tools.Select(t => t.Definition.Name));
        var content = await ToolResultAsync(chat, "files_read_text_file", JsonSerializer.Serialize(new { path = Path.Combine(root, "note.txt") }));
        Assert.Contains("from the filesystem server", content);
    }

    [Fact]
    public async Task Run_McpToolCall_ShowsAsToolEventsLikeBuiltInTools()
    {
        var config = await McpTestServers.WriteConfigAsync(new Dictionary<string, object> { ["everything"] = McpTestServers.Everything() });
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["AGENT_MCP_CONFIG"] = config });
        await McpTestServers.SettledAsync(server);

        var (runId, _) = await server.Client.StartRunAsync(new { input = """/tool everything_echo {"message":"from a run"}""" });
        var events = await server.Client.ReadAllEventsAsync(runId);

        var started = Assert.Single(events, e => e.Name == "tool.started").Data;
        Assert.Equal("everything_echo", started.GetProperty("tool").GetString());
        var completed = Assert.Single(events, e => e.Name == "tool.completed").Data;
        Assert.False(completed.GetProperty("error").GetBoolean());
        Assert.Equal("run.completed", events[^1].Name);
        Assert.Contains("Echo: from a run", events[^1].Data.GetRawText());
    }

    [Fact]
    public async Task Chat_ToolNeedingApproval_IsNotRunAndTheModelIsTold()
    {
        await using var chat = await StartAsync(new Dictionary<string, object>
        {
            ["everything"] = new { command = "node", args = new[] { McpTestServers.EverythingScript, "stdio" }, require_approval = new { always = new { tool_names = new[] { "echo" } }, never = new { tool_names = new[] { "get-sum" } } } },
        });
        var content = await ToolResultAsync(chat, "everything_echo", """{"message":"hi"}""");
        Assert.Contains("needs a person's approval", content);
        Assert.DoesNotContain("Echo:", content);
        var tools = await chat.Client.GetStringAsync("/v1/tools");
        var list = JsonDocument.Parse(tools).RootElement.GetProperty("data").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.True(list["everything_echo"].GetProperty("requires_approval").GetBoolean());
        Assert.False(list["everything_get-sum"].GetProperty("requires_approval").GetBoolean());
        Assert.True(list["everything_get-env"].GetProperty("requires_approval").GetBoolean()); // unlisted in the object form
    }
}
