using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Tests.Tools;

public sealed class WalkTests : WorkspaceToolTestBase
{
    protected override void Seed()
    {
        Ws.Write("a.txt", "needle\n");
        Ws.Write(".git/config", "needle\n");
        Ws.Write("sub/.git/objects/x.txt", "needle\n");
    }

    [Theory]
    [InlineData("grep", """{"pattern":"needle"}""")]
    [InlineData("find_files", """{"glob":"**"}""")]
    public async Task Walk_SkipsGitDirectories(string tool, string arguments)
    {
        var result = await Call(tool, arguments);

        Assert.False(result.IsError);
        Assert.Contains("a.txt", result.Content);
        Assert.DoesNotContain(".git", result.Content);
    }
}
