using ApiServer.Agent.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Agent.Tests.Offline;

public sealed class OfflineModelTests
{
    [Fact]
    public async Task The_offline_model_echoes_the_last_user_message_in_several_deltas_with_usage()
    {
        await using var h = await AgentHarness.StartAsync(offline: true);

        var events = await h.RunAsync("hello offline world");

        Assert.True(events.OfType<TextDelta>().Count() > 1);
        Assert.Equal("echo: hello offline world", events.StreamedText());
        var completed = events.Completed();
        Assert.Equal("echo: hello offline world", completed.FinalText);
        Assert.Equal(FinishReason.Stop, completed.FinishReason);
        Assert.True(completed.Usage.InputTokens > 0);
        Assert.Equal(("echo: hello offline world".Length + 3) / 4, completed.Usage.OutputTokens);
    }

    [Fact]
    public async Task The_offline_agent_reports_itself_as_offline()
    {
        await using var h = await AgentHarness.StartAsync(offline: true);
        var info = h.Services.GetRequiredService<IAgentInfo>();

        Assert.True(info.IsOffline);
        Assert.Equal("offline", info.Model);
        Assert.Null(info.UpstreamHost);
    }

    [Fact]
    public async Task A_slash_tool_command_runs_the_server_tool_and_summarizes_its_result()
    {
        using var ws = new TempWorkspace();
        ws.Write("hello.txt", "file contents here");
        await using var h = await AgentHarness.StartAsync(ws.Settings, offline: true);

        var events = await h.RunAsync("""please /tool read_file {"path":"hello.txt"}""");

        var started = Assert.Single(events.OfType<ToolCallStarted>());
        Assert.Equal(("read_file", """{"path":"hello.txt"}"""), (started.Name, started.Arguments));
        Assert.Equal("file contents here", Assert.Single(events.OfType<ToolCallCompleted>()).Result);
        var completed = events.Completed();
        Assert.Contains("file contents here", completed.FinalText);
        Assert.Equal([ChatRole.Assistant, ChatRole.Tool, ChatRole.Assistant], completed.NewMessages.Select(m => m.Role));
    }

    [Fact]
    public async Task A_slash_tool_command_naming_a_client_tool_ends_the_run_with_ToolCalls()
    {
        await using var h = await AgentHarness.StartAsync(offline: true);
        var request = new AgentRequest
        {
            Messages = [ChatMessage.User("""/tool get_weather {"city":"Paris"}""")],
            ClientTools = [new ToolDefinition("get_weather", "Weather", TestToolRegistration.Schema("""{"type":"object"}"""))],
        };

        var completed = (await h.RunAsync(request)).Completed();

        Assert.Equal(FinishReason.ToolCalls, completed.FinishReason);
        var call = Assert.Single(completed.ClientToolCalls);
        Assert.Equal(("get_weather", """{"city":"Paris"}"""), (call.Name, call.Arguments));
        Assert.StartsWith("call_", call.Id);
    }

    [Fact]
    public async Task After_the_client_returns_tool_results_the_offline_model_summarizes_them()
    {
        await using var h = await AgentHarness.StartAsync(offline: true);
        var request = new AgentRequest
        {
            Messages =
            [
                ChatMessage.User("""/tool get_weather {"city":"Paris"}"""),
                ChatMessage.Assistant("", [new ToolCall("call_1", "get_weather", """{"city":"Paris"}""")]),
                ChatMessage.ToolResult("call_1", "get_weather", "sunny, 21 C"),
            ],
        };

        var completed = (await h.RunAsync(request)).Completed();

        Assert.Equal(FinishReason.Stop, completed.FinishReason);
        Assert.Contains("sunny, 21 C", completed.FinalText);
    }
}
