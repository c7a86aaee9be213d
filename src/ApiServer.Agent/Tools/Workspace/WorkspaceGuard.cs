namespace ApiServer.Agent.Tools.Workspace;

/// <summary>
/// Maps a model-supplied path to a real path inside the workspace, or refuses with a reason.
/// '..' is resolved lexically first, then every component is checked for symlinks and each link target
/// re-checked, so no chain of links can lead outside the root.
/// </summary>
internal sealed class WorkspaceGuard
{
    private const int MaxLinkHops = 40;

    public WorkspaceGuard(string root)
    {
        var full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new InvalidOperationException($"AGENT_WORKSPACE '{root}' does not exist or is not a directory.");
        // The root itself may sit behind a symlink (/tmp on macOS, a mounted volume); compare against its real path.
        Root = Path.TrimEndingDirectorySeparator(RealPath(full));
    }

    public string Root { get; }

    /// <summary>Returns the resolved absolute path, or null with <paramref name="error"/> set.</summary>
    public string? Resolve(string? path, out string? error)
    {
        error = null;
        path = string.IsNullOrWhiteSpace(path) ? "." : path;
        if (path.Contains('\0'))
        {
            error = "Path refused: it contains a NUL byte.";
            return null;
        }

        var full = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(Root, path));
        for (var hops = 0; ; hops++)
        {
            if (!IsInside(full))
            {
                error = hops == 0
                    ? $"Path refused: '{path}' is outside the workspace."
                    : $"Path refused: '{path}' goes through a symlink that points outside the workspace.";
                return null;
            }
            if (hops > MaxLinkHops)
            {
                error = $"Path refused: too many symlinks in '{path}'.";
                return null;
            }
            var next = FollowFirstLink(full);
            if (next is null)
                return full;
            full = next;
        }
    }

    /// <summary>
    /// Opens a resolved path for reading and checks what was actually opened: a regular file inside the root. Checking a
    /// path and then opening it races with anyone who can write into the workspace (a directory swapped for a symlink to /
    /// in between); the descriptor can't be swapped. On Linux /proc/self/fd names the opened file's real path.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? OpenFile(string full, string displayPath, out string? error)
    {
        error = null;
        // A FIFO would block open() itself; refuse what is visibly not a regular file before opening.
        if (FileKinds.Of(full) != FileKind.Regular)
        {
            error = $"Path refused: '{displayPath}' is not a regular file.";
            return null;
        }
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error = $"Cannot open '{displayPath}': {ex.Message}";
            return null;
        }
        if (OperatingSystem.IsLinux())
        {
            var descriptor = $"/proc/self/fd/{handle.DangerousGetHandle()}";
            var opened = new FileInfo(descriptor).LinkTarget;
            if (opened is null || !IsInside(opened) || FileKinds.Of(descriptor) != FileKind.Regular)
            {
                handle.Dispose();
                error = $"Path refused: '{displayPath}' changed while it was being opened and no longer leads to a regular file in the workspace.";
                return null;
            }
        }
        return handle;
    }

    public string Relative(string fullPath)
    {
        var relative = Path.GetRelativePath(Root, fullPath);
        return relative == "." ? "." : relative.Replace('\\', '/');
    }

    private bool IsInside(string full) =>
        full.Length == Root.Length ? string.Equals(full, Root, StringComparison.Ordinal)
        : full.StartsWith(Root, StringComparison.Ordinal) && full.Length > Root.Length && full[Root.Length] == Path.DirectorySeparatorChar;

    /// <summary>Finds the first symlink component under the root and returns the path with it replaced by its target.</summary>
    private string? FollowFirstLink(string full)
    {
        var relative = Path.GetRelativePath(Root, full);
        if (relative == ".")
            return null;
        var segments = relative.Split(Path.DirectorySeparatorChar);
        var current = Root;
        for (var i = 0; i < segments.Length; i++)
        {
            current = Path.Join(current, segments[i]);
            var target = new FileInfo(current).LinkTarget;
            if (target is null)
                continue;
            var resolved = Path.GetFullPath(target, Path.GetDirectoryName(current)!);
            var rest = string.Join(Path.DirectorySeparatorChar, segments.Skip(i + 1));
            return Path.GetFullPath(rest.Length == 0 ? resolved : Path.Join(resolved, rest));
        }
        return null;
    }

    private static string RealPath(string full)
    {
        var info = new DirectoryInfo(full);
        var parent = info.Parent is null ? null : RealPath(info.Parent.FullName);
        var path = parent is null ? full : Path.Join(parent, info.Name);
        return new DirectoryInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName is { } target ? RealPath(target) : path;
    }
}
