using System.IO.Enumeration;
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
        var path = OptionalString(arguments, "path");
        if (Guard.Resolve(path, out var error) is not { } full)
            return Task.FromResult(ToolResult.Error(error!));
        if (FileKinds.Of(full) != FileKind.Directory)
            return Task.FromResult(ToolResult.Error($"'{path}' is not a directory in the workspace."));

        var glob = new Glob(OptionalString(arguments, "glob")!);
        var (matches, complete) = Walk(full, glob, cancellationToken);
        matches.Sort(StringComparer.Ordinal);
        var output = new OutputLimiter(MaxBytes, MaxResults);
        foreach (var match in matches)
        {
            if (!output.AppendLine(match))
                break;
        }
        if (!complete)
        {
            var note = $"[search stopped after visiting {MaxVisited} entries; narrow it with path or a more specific glob]";
            return Task.FromResult(ToolResult.Ok(matches.Count == 0 ? "No files matched. " + note : output.Build() + "\n" + note));
        }
        return Task.FromResult(ToolResult.Ok(output.Build("No files matched.")));
    }

    // Its own walk rather than WalkFiles: it must not descend into .git at all and must stop on huge trees.
    private (List<string> Matches, bool Complete) Walk(string root, Glob glob, CancellationToken cancellationToken)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            AttributesToSkip = FileAttributes.ReparsePoint,
        };
        var entries = new FileSystemEnumerable<(string Path, bool IsDirectory)>(
            root, (ref FileSystemEntry e) => (e.ToFullPath(), e.IsDirectory), options)
        {
            ShouldRecursePredicate = (ref FileSystemEntry e) => !e.FileName.SequenceEqual(".git"),
        };
        var matches = new List<string>();
        var visited = 0;
        foreach (var (file, isDirectory) in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (++visited > MaxVisited)
                return (matches, false);
            // Walking never opens devices or FIFOs: reading one could block the tool forever.
            if (!isDirectory && glob.IsMatch(Path.GetRelativePath(root, file).Replace('\\', '/')) && FileKinds.Of(file) == FileKind.Regular)
                matches.Add(Guard.Relative(file));
        }
        return (matches, true);
    }
}
