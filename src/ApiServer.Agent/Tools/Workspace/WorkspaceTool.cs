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

    /// <summary>Resolves the optional <c>path</c> argument to a workspace directory; returns the refusal when it isn't one.</summary>
    protected ToolResult? ResolveDirectory(JsonElement arguments, out string full)
    {
        var path = OptionalString(arguments, "path");
        full = Guard.Resolve(path, out var error) ?? "";
        if (error is not null)
            return ToolResult.Error(error);
        return FileKinds.Of(full) == FileKind.Directory ? null : ToolResult.Error($"'{path}' is not a directory in the workspace.");
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
    /// Regular files under a directory, without following symlinks or descending into .git, stopping after
    /// <see cref="WalkLimit.MaxVisited"/> entries so a huge tree can't make one call unbounded.
    /// </summary>
    protected static IEnumerable<string> WalkFiles(string directory, WalkLimit limit, CancellationToken cancellationToken)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            AttributesToSkip = FileAttributes.ReparsePoint,
        };
        var entries = new System.IO.Enumeration.FileSystemEnumerable<(string Path, bool IsDirectory)>(
            directory, (ref System.IO.Enumeration.FileSystemEntry e) => (e.ToFullPath(), e.IsDirectory), options)
        {
            ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !e.FileName.SequenceEqual(".git"),
        };
        var visited = 0;
        foreach (var (file, isDirectory) in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (++visited > limit.MaxVisited)
            {
                limit.Truncated = true;
                yield break;
            }
            // Walking never opens devices or FIFOs: reading one could block the tool forever.
            if (!isDirectory && FileKinds.Of(file) == FileKind.Regular)
                yield return file;
        }
    }
}
