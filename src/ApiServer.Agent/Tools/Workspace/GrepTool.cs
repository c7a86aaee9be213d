using System.Text.Json;
using System.Text.RegularExpressions;

namespace ApiServer.Agent.Tools.Workspace;

internal sealed class GrepTool(WorkspaceGuard guard) : WorkspaceTool(guard, "grep",
    "Search text files in the workspace with a .NET regular expression. Prints path:line:text for each match. " +
    "path narrows the search to a file or directory, glob to matching file names (e.g. *.cs).",
    """
    {"type":"object","properties":{"pattern":{"type":"string"},"path":{"type":"string"},"glob":{"type":"string"}},"required":["pattern"],"additionalProperties":false}
    """)
{
    private const int MaxMatches = 200;
    private const int MaxVisited = 200_000;
    private const int MaxLineChars = 300;
    private const long MaxFileBytes = 10 * 1024 * 1024;

    // Untrusted patterns from the model: a timeout keeps catastrophic backtracking from pinning a core.
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    public override async Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        Regex regex;
        try
        {
            regex = new Regex(OptionalString(arguments, "pattern")!, RegexOptions.CultureInvariant, MatchTimeout);
        }
        catch (ArgumentException ex)
        {
            return ToolResult.Error($"Invalid regular expression: {ex.Message}");
        }

        var path = OptionalString(arguments, "path");
        if (Guard.Resolve(path, out var error) is not { } full)
            return ToolResult.Error(error!);
        var glob = OptionalString(arguments, "glob") is { Length: > 0 } g ? new Glob(g) : null;

        var kind = FileKinds.Of(full);
        if (kind is not (FileKind.Directory or FileKind.Regular))
            return ToolResult.Error($"'{path}' is not a file or directory in the workspace.");
        var limit = new WalkLimit(MaxVisited);
        IEnumerable<string> files = kind == FileKind.Directory ? WalkFiles(full, limit, cancellationToken) : [full];

        var output = new OutputLimiter(MaxBytes, MaxMatches);
        try
        {
            foreach (var file in files)
            {
                var relative = Guard.Relative(file);
                // A glob matches paths under a searched directory, or the name of a single searched file.
                var candidate = kind == FileKind.Directory ? Path.GetRelativePath(full, file) : Path.GetFileName(file);
                if (glob is not null && !glob.IsMatch(candidate.Replace('\\', '/')))
                    continue;
                using var handle = Guard.OpenFile(file, relative, out _);
                if (handle is null || RandomAccess.GetLength(handle) > MaxFileBytes || LooksBinary(handle))
                    continue;
                using var reader = new StreamReader(new FileStream(handle, FileAccess.Read));
                var number = 0;
                while (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    number++;
                    if (!regex.IsMatch(line))
                        continue;
                    var shown = line.Length > MaxLineChars ? line[..MaxLineChars] + "…" : line;
                    if (!output.AppendLine($"{relative}:{number}:{shown}"))
                        return ToolResult.Ok(output.Build());
                }
            }
        }
        catch (RegexMatchTimeoutException)
        {
            return ToolResult.Error("The regular expression took too long to match; simplify it.");
        }
        var result = output.Build("No matches.");
        return ToolResult.Ok(limit.Truncated ? result + "\n" + limit.Note : result);
    }
}
