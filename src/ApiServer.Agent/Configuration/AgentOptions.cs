using System.ComponentModel.DataAnnotations;
using ApiServer.Agent.Tools.Workspace;

namespace ApiServer.Agent.Configuration;

/// <summary>The tool loop and the built-in tools. Bound from the "Agent" section; see the README for the AGENT_* variables.</summary>
public sealed class AgentOptions : IValidatableObject
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

    /// <summary>
    /// Names the workspace tools hide (AGENT_WORKSPACE_DENY). Empty: the documented defaults (.git, .env*, private keys…);
    /// else a comma list replacing them, where "default" stands for the defaults and "none" alone hides nothing.
    /// </summary>
    public string WorkspaceDeny { get; set; } = "";

    [Range(1, 3600)]
    public int ToolTimeoutSeconds { get; set; } = 60;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        WorkspaceDenyList.Parse(WorkspaceDeny, out var error);
        if (error is not null)
            yield return new ValidationResult($"AGENT_WORKSPACE_DENY: {error}", [nameof(WorkspaceDeny)]);
    }
}
