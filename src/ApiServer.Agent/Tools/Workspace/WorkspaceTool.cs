using System.Text.Json;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>Shared plumbing of the read-only workspace tools: the schema, the path guard and file checks.</summary>
internal abstract class WorkspaceTool(WorkspaceGuard guard, string name, string description, string schema) : IAgentTool
{
    protected const int MaxBytes = 64 * 1024;
    protected const int BinaryProbeBytes = 8 * 1024;

    public ToolDefinition Definition { get; } = new(name, description, JsonDocument.Parse(schema).RootElement.Clone());

    protected WorkspaceGuard Guard { get; } = guard;

    public abstract Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken);

    protected static string? OptionalString(JsonElement arguments, string name) =>
        arguments.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    protected static int? OptionalInt(JsonElement arguments, string name) =>
        arguments.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : null;

    /// <summary>Opens the optional <c>path</c> argument as a workspace directory; returns the refusal when it isn't one.</summary>
    protected ToolResult? OpenDirectory(JsonElement arguments, out WorkspaceNode directory)
    {
        var path = OptionalString(arguments, "path");
        directory = Guard.Open(path, out var error)!;
        if (error is not null)
            return ToolResult.Error(error);
        if (directory.Kind == FileKind.Directory)
            return null;
        directory.Dispose();
        return ToolResult.Error(WorkspaceGuard.Refusal(directory, path) ?? $"'{path}' is not a directory in the workspace.");
    }

    /// <summary>A NUL byte in the first 8 KB is how git and grep decide a file is binary; we do the same.</summary>
    protected static bool LooksBinary(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        Span<byte> probe = stackalloc byte[BinaryProbeBytes];
        var read = RandomAccess.Read(handle, probe, 0);
        return probe[..read].Contains((byte)0);
    }

    /// <summary>
    /// Reads lines without ever holding more than <paramref name="maxLineChars"/> of one: a longer line is cut with a visible
    /// marker, so a multi-gigabyte file with no newline can't exhaust memory.
    /// </summary>
    protected static async IAsyncEnumerable<string> ReadBoundedLinesAsync(TextReader reader, int maxLineChars,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var buffer = new char[8192];
        var line = new System.Text.StringBuilder();
        var cut = false;
        int read;
        while ((read = await reader.ReadAsync(buffer.AsMemory(), cancellationToken)) > 0)
        {
            for (var i = 0; i < read; i++)
            {
                var c = buffer[i];
                if (c == '\n')
                {
                    yield return Finish();
                    continue;
                }
                if (line.Length < maxLineChars)
                    line.Append(c);
                else
                    cut = true;
            }
        }
        if (line.Length > 0 || cut)
            yield return Finish();

        string Finish()
        {
            var text = line.ToString().TrimEnd('\r');
            if (cut)
                text += $" …[line truncated at {maxLineChars} characters]";
            line.Clear();
            cut = false;
            return text;
        }
    }

    /// <summary>How far a walk may go, and whether it had to stop early.</summary>
    protected sealed class WalkLimit(int maxVisited)
    {
        public int MaxVisited { get; } = maxVisited;
        public bool Truncated { get; set; }

        public string Note => $"[search stopped after visiting {MaxVisited} entries; narrow it with path or a more specific pattern]";
    }

    /// <summary>
    /// Relative paths of the regular files under an opened directory, depth first in no particular order. Each directory is
    /// opened afresh through the guard and read from its descriptor, so nothing swapped in meanwhile leads outside; symlinks,
    /// devices and hidden names are skipped. Stops after <see cref="WalkLimit.MaxVisited"/> entries so a huge tree can't
    /// make one call unbounded.
    /// </summary>
    protected IEnumerable<string> WalkFiles(WorkspaceNode start, WalkLimit limit, CancellationToken cancellationToken)
    {
        var pending = new Stack<string>();
        var visited = 0;
        for (var directory = start; directory is not null; directory = OpenNextDirectory(pending))
        {
            try
            {
                foreach (var entry in Guard.List(directory))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (++visited > limit.MaxVisited)
                    {
                        limit.Truncated = true;
                        yield break;
                    }
                    var relative = directory.Relative == "." ? entry.Name : directory.Relative + "/" + entry.Name;
                    if (entry.Kind == FileKind.Directory)
                        pending.Push(relative);
                    else if (entry.Kind == FileKind.Regular)
                        yield return relative;
                }
            }
            finally
            {
                if (directory != start)
                    directory.Dispose();
            }
        }
    }

    /// <summary>A directory swapped for a file or a symlink since it was listed is skipped, like one that vanished.</summary>
    private WorkspaceNode? OpenNextDirectory(Stack<string> pending)
    {
        while (pending.TryPop(out var next))
        {
            var node = Guard.OpenRelative(next);
            if (node.Kind == FileKind.Directory)
                return node;
            node.Dispose();
        }
        return null;
    }
}
