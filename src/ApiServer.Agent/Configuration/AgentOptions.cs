using System.ComponentModel.DataAnnotations;

namespace ApiServer.Agent.Configuration;

/// <summary>The tool loop and the built-in tools. Bound from the "Agent" section; see the README for the AGENT_* variables.</summary>
public sealed class AgentOptions
{
    public const string SectionName = "Agent";

    public const string DefaultSystemPrompt =
        "You are a helpful assistant running behind an OpenAI-compatible API server. " +
        "Answer clearly and concisely. When tools are available, use them when they help, and never invent tool results.";

    [Range(1, 1000)]
    public int MaxIterations { get; set; } = 50;

    public string SystemPrompt { get; set; } = DefaultSystemPrompt;

    /// <summary>Root of the read-only workspace tools. Empty turns them off.</summary>
    [ExistingDirectory]
    public string Workspace { get; set; } = "";

    [Range(1, 3600)]
    public int ToolTimeoutSeconds { get; set; } = 60;
}
