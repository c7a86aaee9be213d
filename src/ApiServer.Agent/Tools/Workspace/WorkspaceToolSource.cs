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
        // AgentOptions validation already refused a malformed list at startup.
        var guard = new WorkspaceGuard(options.Value.Workspace, WorkspaceDenyList.Parse(options.Value.WorkspaceDeny, out _));
        return [new ListDirTool(guard), new ReadFileTool(guard), new GrepTool(guard), new FindFilesTool(guard)];
    }
}
