using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Tests.Infrastructure;

/// <summary>A temporary workspace and an agent with its workspace tools, per test; <see cref="Seed"/> writes files first.</summary>
public abstract class WorkspaceToolTestBase : IAsyncLifetime
{
    private protected TempWorkspace Ws { get; } = new();

    private protected AgentHarness H { get; private set; } = null!;

    /// <summary>Files the workspace holds before the agent starts.</summary>
    protected virtual void Seed()
    {
    }

    public async Task InitializeAsync()
    {
        Seed();
        H = await AgentHarness.StartAsync(Ws.Settings);
    }

    public async Task DisposeAsync()
    {
        await H.DisposeAsync();
        Ws.Dispose();
    }

    private protected Task<ToolResult> Call(string tool, string arguments) =>
        H.Tools.InvokeAsync(new ToolCall("c1", tool, arguments), CancellationToken.None);
}
