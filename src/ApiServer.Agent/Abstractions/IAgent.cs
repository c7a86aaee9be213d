namespace ApiServer.Agent;

/// <summary>Runs one agent turn: the model, the tools, the loop.</summary>
public interface IAgent
{
    IAsyncEnumerable<AgentEvent> RunAsync(AgentRequest request, CancellationToken cancellationToken);

    /// <summary>Names of the server-executed tools (used to reject client tools with clashing names).</summary>
    IReadOnlyCollection<string> ServerToolNames { get; }
}

/// <summary>What the agent runs on, for health output and startup logs. Never holds secrets.</summary>
public interface IAgentInfo
{
    /// <summary>True when no LLM_BASE_URL is set and the built-in offline model answers.</summary>
    bool IsOffline { get; }

    /// <summary>Upstream host (no path, no credentials), or null when offline.</summary>
    string? UpstreamHost { get; }

    string Model { get; }

    IReadOnlyList<string> FallbackModels { get; }

    /// <summary>closed, open or half-open.</summary>
    string CircuitState { get; }

    /// <summary>Upstream SSE data lines since start that were not a chat.completion chunk and were skipped.</summary>
    long MalformedUpstreamChunks => 0;
}
