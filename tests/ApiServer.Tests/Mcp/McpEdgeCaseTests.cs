using System.Text.Json;
using ApiServer.Mcp;
using ApiServer.Tests.ChatCompletions;
using FakeUpstream;
using ModelContextProtocol.Server;

namespace ApiServer.Tests.Mcp;

/// <summary>Failures of MCP servers reach the model as tool errors, never as failed turns; servers come back on their own.</summary>
public sealed class McpEdgeCaseTests
{
    private static async Task<ChatHarness> StartAsync(object servers)
    {
        var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["AGENT_MCP_CONFIG"] = await McpTestServers.WriteConfigAsync(servers) });
        await McpTestServers.SettledAsync(chat.Server);
        return chat;
    }

    [Fact]
    public async Task IsErrorResult_ModelSeesTheErrorAndTheTurnCompletes()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var chat = await StartAsync(new Dictionary<string, object> { ["local"] = new { url = mcp.Url } });
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "local_fail", "{}").Finish("tool_calls"), FakeResponse.Text("sorry"));

        var (response, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("go")));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("sorry", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("the disk is on fire", await McpTestServers.ToolResultSentUpstreamAsync(chat.FakeUpstream));
    }

    [Fact]
    public async Task SlowTool_TimesOutAsAToolErrorAndTheServerIsToldToCancel()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var chat = await StartAsync(new Dictionary<string, object> { ["local"] = new { url = mcp.Url, timeout_seconds = 1 } });
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "local_slow", "{}").Finish("tool_calls"), FakeResponse.Text("gave up"));

        var (response, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("go")));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("Tool 'local_slow' timed out after 1 s.", await McpTestServers.ToolResultSentUpstreamAsync(chat.FakeUpstream));
        await mcp.SlowCancelled.Task.WaitAsync(TimeSpan.FromSeconds(30)); // notifications/cancelled reached the server
    }

    [Fact]
    public async Task ClientDisconnectMidCall_TheServerIsToldToCancel()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var chat = await StartAsync(new Dictionary<string, object> { ["local"] = new { url = mcp.Url } });
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "local_slow", "{}").Finish("tool_calls"), FakeResponse.Text("never"));
        using var leaving = new CancellationTokenSource();

        var request = chat.Client.PostAsync("/v1/chat/completions", new StringContent(
            JsonSerializer.Serialize(ChatHarness.Body(ChatHarness.User("go"))), System.Text.Encoding.UTF8, "application/json"), leaving.Token);
        await mcp.SlowStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await leaving.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        await mcp.SlowCancelled.Task.WaitAsync(TimeSpan.FromSeconds(30)); // notifications/cancelled reached the server
    }

    [Fact]
    public async Task ServerKilledMidCall_ToolErrorThenReconnectsWhenItIsBack()
    {
        var mcp = await InProcessMcpServer.StartAsync();
        var port = mcp.Port;
        await using var chat = await StartAsync(new Dictionary<string, object> { ["local"] = new { url = mcp.Url, type = "http" } });
        var hub = chat.Server.Service<McpHub>();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "local_slow", "{}").Finish("tool_calls"), FakeResponse.Text("ok"));

        var turn = chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("go")));
        await mcp.SlowStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await mcp.DisposeAsync();
        var (response, _) = await turn;

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Contains("local_slow", await McpTestServers.ToolResultSentUpstreamAsync(chat.FakeUpstream));
        await McpTestServers.SettledAsync(chat.Server, h => h.Servers[0].State == McpServerState.Failed);
        Assert.Empty(hub.Tools);

        await using var back = await InProcessMcpServer.StartAsync(port);
        await McpTestServers.SettledAsync(chat.Server, h => h.Servers[0].State == McpServerState.Ready);
        Assert.Contains(hub.Tools, t => t.Definition.Name == "local_fail");
    }

    [Fact]
    public async Task ToolListChanged_NewToolJoinsWithoutReconnecting()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var chat = await StartAsync(new Dictionary<string, object> { ["local"] = new { url = mcp.Url } });
        var hub = chat.Server.Service<McpHub>();
        Assert.DoesNotContain(hub.Tools, t => t.Definition.Name == "local_late");

        mcp.Tools.Add(McpServerTool.Create(() => "late answer", new McpServerToolCreateOptions { Name = "late", Description = "Added later." }));

        await McpTestServers.SettledAsync(chat.Server, h => h.Tools.Any(t => t.Definition.Name == "local_late"));
        Assert.Equal(McpServerState.Ready, hub.Servers[0].State);
    }

    [Fact]
    public async Task ServerThatNeverAnswers_FailsWithItsReasonAndOthersStillWork()
    {
        await using var mcp = await InProcessMcpServer.StartAsync();
        await using var chat = await StartAsync(new Dictionary<string, object>
        {
            ["mute"] = new { command = "sleep", args = new[] { "600" }, timeout_seconds = 1 },
            ["local"] = new { url = mcp.Url },
        });

        var body = JsonDocument.Parse(await chat.Client.GetStringAsync("/v1/tools")).RootElement;

        var servers = body.GetProperty("mcp_servers").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!);
        Assert.Equal("ready", servers["local"].GetProperty("state").GetString());
        Assert.NotEqual("ready", servers["mute"].GetProperty("state").GetString());
        Assert.Contains("initialize", chat.Server.Service<McpHub>().Servers[0].LastError);
    }
}
