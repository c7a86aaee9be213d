using ApiServer.Agent;
using ApiServer.Agent.Configuration;
using ApiServer.Agent.Tools;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Tests.Tools;

public sealed class ToolRegistryTests
{
    [Fact]
    public async Task Invoke_UnknownToolWithNoToolsEnabled_SaysSoInsteadOfListingNothing()
    {
        var registry = new ToolRegistry([], [], [], Options.Create(new AgentOptions()), TimeProvider.System, NullLogger<ToolRegistry>.Instance);

        var result = await registry.InvokeAsync(new ToolCall("call_1", "list_dir", "{}"), CancellationToken.None);

        Assert.True(result.IsError);
        Assert.Equal("Unknown tool 'list_dir'. No tools are enabled on this server.", result.Content);
    }
}
