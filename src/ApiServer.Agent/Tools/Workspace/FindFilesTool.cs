using System.Text.Json;

namespace ApiServer.Agent.Tools.Workspace;

internal sealed class FindFilesTool(WorkspaceGuard guard) : WorkspaceTool(guard, "find_files",
    "Find files in the workspace by glob: '*' within a name, '**' across directories, '?' one character. " +
    "A glob without '/' matches file names at any depth. path narrows the search to a directory.",
    """
    {"type":"object","properties":{"glob":{"type":"string"},"path":{"type":"string"}},"required":["glob"],"additionalProperties":false}
    """)
{
    private const int MaxResults = 1000;
    private const int MaxVisited = 200_000;

    public override Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (OpenDirectory(arguments, out var directory) is { } refused)
            return Task.FromResult(refused);
        using var _ = directory;

        var glob = new Glob(OptionalString(arguments, "glob")!);
        var limit = new WalkLimit(MaxVisited);
        var prefix = directory.Relative == "." ? 0 : directory.Relative.Length + 1;
        var matches = WalkFiles(directory, limit, cancellationToken).Where(file => glob.IsMatch(file[prefix..])).ToList();
        matches.Sort(StringComparer.Ordinal);
        var output = new OutputLimiter(MaxBytes, MaxResults);
        foreach (var match in matches)
        {
            if (!output.AppendLine(match))
                break;
        }
        if (limit.Truncated)
            return Task.FromResult(ToolResult.Ok(matches.Count == 0 ? "No files matched. " + limit.Note : output.Build() + "\n" + limit.Note));
        return Task.FromResult(ToolResult.Ok(output.Build("No files matched.")));
    }
}
