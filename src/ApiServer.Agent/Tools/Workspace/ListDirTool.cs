using System.Text.Json;

namespace ApiServer.Agent.Tools.Workspace;

internal sealed class ListDirTool(WorkspaceGuard guard) : WorkspaceTool(guard, "list_dir",
    "List the entries of a directory in the workspace. Directories end with '/', symlinks with '@'.",
    """
    {"type":"object","properties":{"path":{"type":"string","description":"Directory relative to the workspace root. Defaults to the root."}},"additionalProperties":false}
    """)
{
    private const int MaxEntries = 1000;

    private static readonly Comparer<string> LastNameFirst = Comparer<string>.Create((a, b) => StringComparer.Ordinal.Compare(b, a));

    public override Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (OpenDirectory(arguments, out var directory) is { } refused)
            return Task.FromResult(refused);
        using var _ = directory;

        // Keep only the first MaxEntries + 1 names in order (a heap whose top is the last kept name), so a directory with
        // millions of entries costs bounded memory; the extra one tells the limiter to mark the listing as cut.
        var kept = new PriorityQueue<WorkspaceEntry, string>(LastNameFirst);
        var total = 0;
        foreach (var entry in Guard.List(directory))
        {
            cancellationToken.ThrowIfCancellationRequested();
            total++;
            if (kept.Count <= MaxEntries)
                kept.Enqueue(entry, entry.Name);
            else if (StringComparer.Ordinal.Compare(entry.Name, kept.Peek().Name) < 0)
                kept.EnqueueDequeue(entry, entry.Name);
        }
        var entries = kept.UnorderedItems.Select(e => e.Element).ToList();
        entries.Sort((a, b) => StringComparer.Ordinal.Compare(a.Name, b.Name));

        var output = new OutputLimiter(MaxBytes, MaxEntries);
        foreach (var entry in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Sizes come from the listed directory's own descriptor, never from wherever a name might point.
            var line = entry.Kind switch
            {
                FileKind.Symlink => entry.Name + "@",
                FileKind.Directory => entry.Name + "/",
                FileKind.Regular => $"{entry.Name}  ({entry.Length} bytes)",
                _ => entry.Name,
            };
            if (!output.AppendLine(line))
                break;
        }
        var text = output.Build("(empty directory)");
        return Task.FromResult(ToolResult.Ok(output.IsFull ? $"{text} ({total} entries in all)" : text));
    }
}
