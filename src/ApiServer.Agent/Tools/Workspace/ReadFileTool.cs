using System.Text.Json;

namespace ApiServer.Agent.Tools.Workspace;

internal sealed class ReadFileTool(WorkspaceGuard guard) : WorkspaceTool(guard, "read_file",
    "Read a text file in the workspace. offset is the 1-based line to start at, limit the number of lines.",
    """
    {"type":"object","properties":{"path":{"type":"string"},"offset":{"type":"integer","minimum":1},"limit":{"type":"integer","minimum":1}},"required":["path"],"additionalProperties":false}
    """)
{
    private const int DefaultLimit = 2000;
    private const int MaxLineChars = 2000;

    public override async Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        var path = OptionalString(arguments, "path");
        if (Guard.Open(path, out var error) is not { } file)
            return ToolResult.Error(error!);
        using var _ = file;
        switch (file.Kind)
        {
            case FileKind.Missing:
                return ToolResult.Error($"File not found: '{path}'.");
            case FileKind.Directory:
                return ToolResult.Error($"'{path}' is a directory; use list_dir.");
            case not FileKind.Regular:
                return ToolResult.Error(WorkspaceGuard.Refusal(file, path)!);
        }
        var handle = file.Handle!;
        if (LooksBinary(handle))
            return ToolResult.Error($"'{path}' is a binary file ({RandomAccess.GetLength(handle)} bytes); not shown.");

        var offset = Math.Max(1, OptionalInt(arguments, "offset") ?? 1);
        var limit = Math.Max(1, OptionalInt(arguments, "limit") ?? DefaultLimit);
        var output = new OutputLimiter(MaxBytes, limit);
        var lineNumber = 0;
        var more = false;
        using var reader = new StreamReader(new FileStream(handle, FileAccess.Read));
        await foreach (var line in ReadBoundedLinesAsync(reader, MaxLineChars, cancellationToken))
        {
            if (++lineNumber < offset)
                continue;
            if (!output.AppendLine(line))
            {
                more = true;
                break;
            }
        }
        if (lineNumber < offset && lineNumber > 0)
            return ToolResult.Error($"offset {offset} is past the end of '{path}' ({lineNumber} lines).");
        var text = output.Build("(empty file)");
        // Tell the model how to continue rather than leave it guessing at the next offset.
        return ToolResult.Ok(more ? $"{text}\n[more lines follow: continue with offset={lineNumber}]" : text);
    }
}
