namespace ApiServer.Agent.Tools.Workspace;

/// <summary>
/// The fallback where the Linux calls are missing (Windows, macOS, an unknown architecture): the same rules (no symlink
/// followed, no device opened) checked on the path and then opened, as the tools always did there. A process writing into
/// the workspace at the same moment can win that race; the Linux file system closes it. The project's Docker image and CI
/// run on Linux.
/// </summary>
internal sealed class PathWorkspaceFileSystem(string root) : IWorkspaceFileSystem
{
    public WorkspaceNode Open(string relative)
    {
        var full = relative == "." ? root : Path.Join(root, relative);
        var current = root;
        foreach (var segment in relative == "." ? [] : relative.Split('/'))
        {
            current = Path.Join(current, segment);
            var info = new FileInfo(current);
            if (info.LinkTarget is not null)
                return WorkspaceNode.Failed(relative, FileKind.Symlink, null);
            if (!info.Exists && !Directory.Exists(current))
                return WorkspaceNode.Failed(relative, FileKind.Missing, null);
        }
        if (Directory.Exists(full))
            return new WorkspaceNode(relative, FileKind.Directory, 0, null, full);
        try
        {
            if ((File.GetAttributes(full) & FileAttributes.Device) != 0)
                return WorkspaceNode.Failed(relative, FileKind.Special, null);
            var handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new WorkspaceNode(relative, FileKind.Regular, RandomAccess.GetLength(handle), handle, null);
        }
        catch (FileNotFoundException)
        {
            return WorkspaceNode.Failed(relative, FileKind.Missing, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return WorkspaceNode.Failed(relative, FileKind.Unreadable, ex.Message);
        }
    }

    public IEnumerable<WorkspaceEntry> List(WorkspaceNode directory)
    {
        var options = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true };
        foreach (var entry in new DirectoryInfo(directory.FullPath!).EnumerateFileSystemInfos("*", options))
        {
            yield return entry switch
            {
                { LinkTarget: not null } => new WorkspaceEntry(entry.Name, FileKind.Symlink, 0),
                DirectoryInfo => new WorkspaceEntry(entry.Name, FileKind.Directory, 0),
                FileInfo { Attributes: var a } when (a & FileAttributes.Device) != 0 => new WorkspaceEntry(entry.Name, FileKind.Special, 0),
                FileInfo file => new WorkspaceEntry(entry.Name, FileKind.Regular, file.Length),
                _ => new WorkspaceEntry(entry.Name, FileKind.Special, 0),
            };
        }
    }

    public void Dispose()
    {
    }
}
