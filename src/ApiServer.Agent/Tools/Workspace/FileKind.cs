using Microsoft.Win32.SafeHandles;

namespace ApiServer.Agent.Tools.Workspace;

internal enum FileKind
{
    /// <summary>Not there, or hidden by the deny list: the two must look the same to the model.</summary>
    Missing,
    Regular,
    Directory,

    /// <summary>The tools follow no symlink, inside the workspace or not.</summary>
    Symlink,

    /// <summary>Character or block device, FIFO, socket: opening one can block forever or read without end.</summary>
    Special,

    /// <summary>There, but the open failed for another reason (permissions); <see cref="WorkspaceNode.Problem"/> says which.</summary>
    Unreadable,
}

/// <summary>One name in a directory listing, described without following it.</summary>
internal readonly record struct WorkspaceEntry(string Name, FileKind Kind, long Length);

/// <summary>
/// An opened file or directory of the workspace (relative path with '/'), or why it couldn't be opened. On Linux
/// <see cref="Handle"/> is the descriptor for both; on the path fallback it is set for files and <see cref="FullPath"/> for directories.
/// </summary>
internal sealed class WorkspaceNode(string relative, FileKind kind, long length, SafeFileHandle? handle, string? fullPath) : IDisposable
{
    public string Relative { get; } = relative;
    public FileKind Kind { get; } = kind;
    public long Length { get; } = length;
    public SafeFileHandle? Handle { get; } = handle;
    public string? FullPath { get; } = fullPath;
    public string? Problem { get; private init; }

    public static WorkspaceNode Failed(string relative, FileKind kind, string? problem) =>
        new(relative, kind, 0, null, null) { Problem = problem };

    public void Dispose() => Handle?.Dispose();
}

/// <summary>How the guard opens and lists: descriptor-relative on Linux, by path elsewhere.</summary>
internal interface IWorkspaceFileSystem : IDisposable
{
    /// <summary>Opens a normalised relative path ("." for the root) without following symlinks.</summary>
    WorkspaceNode Open(string relative);

    /// <summary>The entries of an opened directory, each described without following it.</summary>
    IEnumerable<WorkspaceEntry> List(WorkspaceNode directory);
}
