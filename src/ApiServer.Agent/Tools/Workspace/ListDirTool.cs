using System.Text.Json;

namespace ApiServer.Agent.Tools.Workspace;

internal sealed class ListDirTool(WorkspaceGuard guard) : WorkspaceTool(guard, "list_dir",
    "List the entries of a directory in the workspace. Directories end with '/', symlinks with '@'.",
    """
    {"type":"object","properties":{"path":{"type":"string","description":"Directory relative to the workspace root. Defaults to the root."}},"additionalProperties":false}
    """)
{
    private const int MaxEntries = 1000;

    public override Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (ResolveDirectory(arguments, out var full) is { } refused)
            return Task.FromResult(refused);

        var output = new OutputLimiter(MaxBytes, MaxEntries);
        // Collect first so cancellation is seen while a huge directory is still being read, not only after sorting it.
        var entries = new List<FileSystemInfo>();
        foreach (var entry in new DirectoryInfo(full).EnumerateFileSystemInfos("*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true }))
        {
            cancellationToken.ThrowIfCancellationRequested();
            entries.Add(entry);
        }
        entries.Sort((a, b) => StringComparer.Ordinal.Compare(a.Name, b.Name));
        foreach (var entry in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var line = entry switch
            {
                { LinkTarget: not null } => entry.Name + "@",
                DirectoryInfo => entry.Name + "/",
                FileInfo file => $"{entry.Name}  ({file.Length} bytes)",
                _ => entry.Name,
            };
            if (!output.AppendLine(line))
                break;
        }
        return Task.FromResult(ToolResult.Ok(output.Build("(empty directory)")));
    }
}
