using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>
/// Opens workspace paths relative to a descriptor of the root opened once, following no symlink at any step, so nothing a
/// concurrent writer renames or swaps can lead outside. Linux 5.6+ does the whole walk in the kernel with openat2(2)
/// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS; older kernels (or a seccomp profile that refuses openat2) get the same guarantee
/// from one openat(O_NOFOLLOW) per component. Directories are read from their own descriptor with getdents64(2) and each
/// entry is described with statx(AT_SYMLINK_NOFOLLOW) against that descriptor: a name and a size never come from elsewhere.
/// Opening /proc/self/fd/N instead would be safe for the directory itself (the magic link is the opened object), but .NET's
/// enumerator then stats and recurses by path, which follows symlinks again; so we read the descriptor directly.
/// </summary>
internal sealed class LinuxWorkspaceFileSystem(SafeFileHandle root, Abi abi, bool useOpenat2) : IWorkspaceFileSystem
{
    private static bool? s_hasOpenat2;

    private readonly SafeFileHandle _root = root;
    private readonly Abi _abi = abi;

    /// <summary>Null on an architecture whose flag values and syscall numbers we don't know (the caller falls back).</summary>
    public static LinuxWorkspaceFileSystem? TryCreate(string root, bool allowOpenat2)
    {
        if (!OperatingSystem.IsLinux() || Abi.Current is not { } abi)
            return null;
        var fd = Native.Open(root, abi.ReadOnlyDirectory | Abi.CloseOnExec, 0);
        if (fd < 0)
            throw new InvalidOperationException($"AGENT_WORKSPACE '{root}' cannot be opened: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (s_hasOpenat2 is null)
        {
            // Probe once per process: ENOSYS on kernels before 5.6, EPERM under seccomp profiles that predate openat2.
            using var probe = TryOpenat2(handle, ".", abi.ReadOnlyDirectory | Abi.CloseOnExec, abi, out _);
            s_hasOpenat2 = probe is not null;
        }
        return new LinuxWorkspaceFileSystem(handle, abi, allowOpenat2 && s_hasOpenat2.Value);
    }

    public WorkspaceNode Open(string relative)
    {
        var flags = Abi.ReadOnly | Abi.NonBlocking | Abi.NoControllingTerminal | _abi.NoFollow | Abi.CloseOnExec;
        int errno;
        SafeFileHandle? handle;
        if (useOpenat2)
        {
            // EAGAIN means the kernel saw a rename race it couldn't rule out; a retry or two settles it.
            var attempts = 0;
            do
                handle = TryOpenat2(_root, relative, flags, _abi, out errno);
            while (handle is null && errno == Errno.Again && ++attempts < 3);
        }
        else
            handle = WalkOpen(relative, flags, out errno);

        if (handle is null)
            return WorkspaceNode.Failed(relative, ErrnoKind(errno), errno == 0 ? null : Marshal.GetPInvokeErrorMessage(errno));
        if (!Stat(handle, "", Native.AtEmptyPath, out var kind, out var length))
        {
            handle.Dispose();
            return WorkspaceNode.Failed(relative, FileKind.Missing, null);
        }
        // Opened with O_NONBLOCK, so a FIFO swapped in at the last moment returned at once instead of blocking; it is
        // refused here, on the descriptor, where no later swap can change the answer.
        if (kind is not (FileKind.Regular or FileKind.Directory))
        {
            handle.Dispose();
            return WorkspaceNode.Failed(relative, FileKind.Special, null);
        }
        return new WorkspaceNode(relative, kind, length, handle, null);
    }

    public IEnumerable<WorkspaceEntry> List(WorkspaceNode directory)
    {
        var handle = directory.Handle ?? throw new InvalidOperationException("Not an opened directory.");
        var buffer = new byte[32 * 1024];
        while (true)
        {
            var read = Native.GetDents64(_abi.GetDents64, handle, buffer);
            if (read <= 0)
                yield break;
            for (var offset = 0; offset < read;)
            {
                // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }: the same everywhere.
                var length = BitConverter.ToUInt16(buffer, offset + 16);
                var nameBytes = buffer.AsSpan(offset + 19, length - 19);
                var name = System.Text.Encoding.UTF8.GetString(nameBytes[..nameBytes.IndexOf((byte)0)]);
                offset += length;
                if (name is "." or "..")
                    continue;
                // Gone since the directory was read: not an entry any more.
                if (Stat(handle, name, Native.AtSymlinkNoFollow, out var kind, out var size))
                    yield return new WorkspaceEntry(name, kind, size);
            }
        }
    }

    public void Dispose() => _root.Dispose();

    /// <summary>One openat(O_NOFOLLOW) per component, each relative to the directory opened before it.</summary>
    private SafeFileHandle? WalkOpen(string relative, int flags, out int errno)
    {
        var segments = relative == "." ? ["."] : relative.Split('/');
        var current = _root;
        try
        {
            for (var i = 0; i < segments.Length - 1; i++)
            {
                // O_PATH: a directory to walk through is never really opened (no read permission needed, no side effects).
                var fd = Native.OpenAt(current, segments[i], Abi.PathOnly | _abi.Directory | _abi.NoFollow | Abi.CloseOnExec, 0);
                if (fd < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    // O_DIRECTORY answers ENOTDIR for a symlink as for a file; tell them apart for the message only.
                    if (errno == Errno.NotDirectory && Stat(current, segments[i], Native.AtSymlinkNoFollow, out var kind, out _) && kind == FileKind.Symlink)
                        errno = Errno.Loop;
                    return null;
                }
                if (current != _root)
                    current.Dispose();
                current = new SafeFileHandle(fd, ownsHandle: true);
            }
            var opened = Native.OpenAt(current, segments[^1], flags, 0);
            errno = opened < 0 ? Marshal.GetLastPInvokeError() : 0;
            return opened < 0 ? null : new SafeFileHandle(opened, ownsHandle: true);
        }
        finally
        {
            if (current != _root)
                current.Dispose();
        }
    }

    private static SafeFileHandle? TryOpenat2(SafeFileHandle directory, string relative, int flags, Abi abi, out int errno)
    {
        var fd = Native.Openat2(abi.Openat2, directory, relative, (ulong)flags, Native.ResolveBeneath | Native.ResolveNoSymlinks);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new SafeFileHandle((nint)fd, ownsHandle: true);
    }

    private static FileKind ErrnoKind(int errno) => errno switch
    {
        Errno.NoEntry or Errno.NotDirectory => FileKind.Missing,
        Errno.Loop => FileKind.Symlink,
        // A socket can't be opened at all.
        Errno.NoDeviceOrAddress => FileKind.Special,
        _ => FileKind.Unreadable,
    };

    private static bool Stat(SafeFileHandle directory, string name, int flags, out FileKind kind, out long length)
    {
        Span<byte> buffer = stackalloc byte[Native.StatxSize];
        kind = FileKind.Missing;
        length = 0;
        if (Native.Statx(directory, name, flags | Native.AtNoAutomount, Native.StatxTypeAndSize, ref MemoryMarshal.GetReference(buffer)) != 0)
            return false;
        // struct statx has one layout on every architecture: stx_mode (u16) at 28, stx_size (u64) at 40, native endian.
        kind = (MemoryMarshal.Read<ushort>(buffer[28..]) & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.Symlink,
            _ => FileKind.Special,
        };
        length = (long)MemoryMarshal.Read<ulong>(buffer[40..]);
        return true;
    }
}
