namespace ApiServer.Agent.Tools.Workspace;

/// <summary>How the guard opens paths; tests pick one to prove both are safe.</summary>
internal enum WorkspaceOpenMode
{
    /// <summary>openat2 where the kernel has it, else the component walk; by path off Linux.</summary>
    Auto,

    /// <summary>One openat(O_NOFOLLOW) per component even where openat2 exists.</summary>
    ComponentWalk,

    /// <summary>Check the path, then open it (what Windows and macOS get).</summary>
    ByPath,
}

/// <summary>
/// Maps a model-supplied path to an opened file or directory inside the workspace, or refuses with a reason. The path is
/// normalised lexically ('..' can't climb above the root, absolute paths must lie under it), hidden names answer as missing,
/// and the open itself follows no symlink at any step (see <see cref="LinuxWorkspaceFileSystem"/>). Because no symlink is
/// ever followed, resolving '..' by text is exact: it can only cancel a real directory.
/// </summary>
internal sealed class WorkspaceGuard : IDisposable
{
    private readonly IWorkspaceFileSystem _files;

    public WorkspaceGuard(string root, WorkspaceDenyList? deny = null, WorkspaceOpenMode mode = WorkspaceOpenMode.Auto)
    {
        var full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new InvalidOperationException($"AGENT_WORKSPACE '{root}' does not exist or is not a directory.");
        // The root itself may sit behind a symlink (/tmp on macOS, a mounted volume): the operator chose it, so it is
        // resolved once here; absolute paths from the model are compared against its real path.
        Root = Path.TrimEndingDirectorySeparator(RealPath(full));
        Deny = deny ?? WorkspaceDenyList.Parse(null, out _);
        _files = (mode == WorkspaceOpenMode.ByPath ? null : LinuxWorkspaceFileSystem.TryCreate(Root, allowOpenat2: mode == WorkspaceOpenMode.Auto))
            ?? (IWorkspaceFileSystem)new PathWorkspaceFileSystem(Root);
    }

    public string Root { get; }

    public WorkspaceDenyList Deny { get; }

    /// <summary>Normalises a model-supplied path to one relative to the root ("." for the root), or null with a refusal.</summary>
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
        if (!IsInside(full))
        {
            error = $"Path refused: '{path}' is outside the workspace.";
            return null;
        }
        var relative = Path.GetRelativePath(Root, full);
        return relative == "." ? "." : relative.Replace('\\', '/');
    }

    /// <summary>
    /// Opens a model-supplied path: null with a refusal when it leaves the workspace, else a node whose kind the caller
    /// checks (a hidden name comes back <see cref="FileKind.Missing"/>, exactly as an absent one).
    /// </summary>
    public WorkspaceNode? Open(string? path, out string? error) =>
        Resolve(path, out error) is { } relative ? OpenRelative(relative) : null;

    /// <summary>Opens a normalised relative path, e.g. one produced by a walk.</summary>
    public WorkspaceNode OpenRelative(string relative) =>
        Deny.HidesPath(relative) ? WorkspaceNode.Failed(relative, FileKind.Missing, null) : _files.Open(relative);

    /// <summary>The visible entries of an opened directory (hidden names left out), none followed.</summary>
    public IEnumerable<WorkspaceEntry> List(WorkspaceNode directory) =>
        _files.List(directory).Where(entry => !Deny.Hides(entry.Name));

    /// <summary>The refusal for a node that is neither missing nor of the kind the tool wanted, or null.</summary>
    public static string? Refusal(WorkspaceNode node, string? displayPath) => node.Kind switch
    {
        FileKind.Symlink => $"Path refused: '{displayPath}' is or goes through a symlink; the workspace tools do not follow symlinks.",
        FileKind.Special => $"Path refused: '{displayPath}' is not a regular file (device, FIFO or socket).",
        FileKind.Unreadable => $"Cannot open '{displayPath}': {node.Problem}.",
        _ => null,
    };

    public void Dispose() => _files.Dispose();

    private bool IsInside(string full) =>
        full.Length == Root.Length ? string.Equals(full, Root, StringComparison.Ordinal)
        : full.StartsWith(Root, StringComparison.Ordinal) && full.Length > Root.Length && full[Root.Length] == Path.DirectorySeparatorChar;

    private static string RealPath(string full)
    {
        var info = new DirectoryInfo(full);
        var parent = info.Parent is null ? null : RealPath(info.Parent.FullName);
        var path = parent is null ? full : Path.Join(parent, info.Name);
        return new DirectoryInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName is { } target ? RealPath(target) : path;
    }
}
