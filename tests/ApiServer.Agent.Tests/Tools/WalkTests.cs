using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Tests.Tools;

public sealed class WalkTests : IAsyncLifetime
{
    private readonly TempWorkspace _ws = new();
    private AgentHarness _h = null!;

    public async Task InitializeAsync()
    {
        _ws.Write("a.txt", "needle\n");
        _ws.Write(".git/config", "needle\n");
        _ws.Write("sub/.git/objects/x.txt", "needle\n");
        _h = await AgentHarness.StartAsync(_ws.Settings);
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        _ws.Dispose();
    }

    [Theory]
    [InlineData("grep", """{"pattern":"needle"}""")]
    [InlineData("find_files", """{"glob":"**"}""")]
    public async Task Walk_SkipsGitDirectories(string tool, string arguments)
    {
        var result = await _h.Tools.InvokeAsync(new ToolCall("c1", tool, arguments), CancellationToken.None);

        Assert.False(result.IsError);
        Assert.Contains("a.txt", result.Content);
        Assert.DoesNotContain(".git", result.Content);
    }
}
