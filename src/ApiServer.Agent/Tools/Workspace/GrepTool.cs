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
        if (Guard.Open(path, out var error) is not { } searched)
            return ToolResult.Error(error!);
        using var _ = searched;
        if (searched.Kind is not (FileKind.Directory or FileKind.Regular))
            return ToolResult.Error(WorkspaceGuard.Refusal(searched, path) ?? $"'{path}' is not a file or directory in the workspace.");
        var glob = OptionalString(arguments, "glob") is { Length: > 0 } g ? new Glob(g) : null;
        var isDirectory = searched.Kind == FileKind.Directory;
        var prefix = searched.Relative == "." ? 0 : searched.Relative.Length + 1;
        var limit = new WalkLimit(MaxVisited);
        IEnumerable<string> files = isDirectory ? WalkFiles(searched, limit, cancellationToken) : [searched.Relative];

        var output = new OutputLimiter(MaxBytes, MaxMatches);
        try
        {
            foreach (var relative in files)
            {
                // A glob matches paths under a searched directory, or the name of a single searched file.
                var candidate = isDirectory ? relative[prefix..] : Path.GetFileName(relative);
                if (glob is not null && !glob.IsMatch(candidate))
                    continue;
                // The walk's file may have been swapped since it was listed; the node says what was actually opened.
                using var walked = isDirectory ? Guard.OpenRelative(relative) : null;
                var file = walked ?? searched;
                if (file is not { Kind: FileKind.Regular, Handle: { } handle } || file.Length > MaxFileBytes || LooksBinary(handle))
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
