namespace ApiServer.Mcp;

/// <summary>One entry of <c>mcpServers</c>, with every <c>${VAR}</c> already replaced. Either <see cref="Command"/> or <see cref="Url"/> is set.</summary>
public sealed record McpServerConfig(
    string Name,
    string? Command,
    IReadOnlyList<string> Args,
    IReadOnlyDictionary<string, string> Env,
    string? Cwd,
    Uri? Url,
    IReadOnlyDictionary<string, string> Headers,
    McpRemoteTransport Transport,
    bool Enabled,
    IReadOnlySet<string>? AllowedTools,
    McpApprovalPolicy Approval,
    TimeSpan Timeout)
{
    public bool IsStdio => Command is not null;
}

public enum McpRemoteTransport
{
    /// <summary>Streamable HTTP, falling back to SSE when the server does not speak it.</summary>
    Auto,
    StreamableHttp,
    Sse,
}

/// <summary>
/// Which tools need a person's approval, in the shape of OpenAI's <c>mcp</c> tool: <c>"always"</c>, <c>"never"</c>, or
/// <c>{"always": {"tool_names": […]}, "never": {"tool_names": […]}}</c>. In the object form a tool named in neither list
/// needs approval: an operator who started listing tools gets the safe answer for the ones they forgot.
/// </summary>
public sealed record McpApprovalPolicy(bool Default, IReadOnlySet<string> Always, IReadOnlySet<string> Never)
{
    public static readonly McpApprovalPolicy NeverNeeded = new(false, new HashSet<string>(), new HashSet<string>());
    public static readonly McpApprovalPolicy AlwaysNeeded = new(true, new HashSet<string>(), new HashSet<string>());

    public bool Requires(string tool) => Always.Contains(tool) || (!Never.Contains(tool) && Default);
}
