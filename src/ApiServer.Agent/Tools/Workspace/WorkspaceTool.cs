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

    /// <summary>A NUL byte in the first 8 KB is how git and grep decide a file is binary; we do the same.</summary>
    protected static bool LooksBinary(string path)
    {
        Span<byte> probe = stackalloc byte[BinaryProbeBytes];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var read = RandomAccess.Read(handle, probe, 0);
        return probe[..read].Contains((byte)0);
    }

    /// <summary>Enumerates regular files under a directory without following symlinks, skipping .git.</summary>
    protected static IEnumerable<string> WalkFiles(string directory, CancellationToken cancellationToken)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            AttributesToSkip = FileAttributes.ReparsePoint,
        };
        foreach (var file in Directory.EnumerateFiles(directory, "*", options))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (file.Contains("/.git/", StringComparison.Ordinal))
                continue;
            // Walking never opens devices or FIFOs: reading one could block the tool forever.
            if (FileKinds.Of(file) == FileKind.Regular)
                yield return file;
        }
    }
}
