using ApiServer.Agent.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>The read-only workspace tools, present only when AGENT_WORKSPACE is set.</summary>
internal sealed class WorkspaceToolSource(IOptions<AgentOptions> options) : IAgentToolSource
{
    public IEnumerable<IAgentTool> GetTools()
    {
        if (string.IsNullOrWhiteSpace(options.Value.Workspace))
            return [];
        var guard = new WorkspaceGuard(options.Value.Workspace);
        return [new ListDirTool(guard), new ReadFileTool(guard), new GrepTool(guard), new FindFilesTool(guard)];
    }
}
