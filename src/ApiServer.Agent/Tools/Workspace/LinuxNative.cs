using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>
/// Open flags and syscall numbers that differ between Linux architectures (O_DIRECTORY and O_NOFOLLOW on arm and powerpc,
/// getdents64 everywhere); openat2 is 437 on all of them. Null where we don't know the values.
/// </summary>
internal sealed record Abi(int Directory, int NoFollow, long GetDents64)
{
    public const int ReadOnly = 0;
    public const int NoControllingTerminal = 0x100;
    public const int NonBlocking = 0x800;
    public const int CloseOnExec = 0x80000;
    public const int PathOnly = 0x200000;

    public long Openat2 => 437;

    public int ReadOnlyDirectory => ReadOnly | Directory;

    public static Abi? Current { get; } = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => new Abi(0x10000, 0x20000, 217),
        Architecture.X86 => new Abi(0x10000, 0x20000, 220),
        Architecture.S390x => new Abi(0x10000, 0x20000, 220),
        Architecture.RiscV64 or Architecture.LoongArch64 => new Abi(0x10000, 0x20000, 61),
        Architecture.Arm64 => new Abi(0x4000, 0x8000, 61),
        Architecture.Arm => new Abi(0x4000, 0x8000, 217),
        Architecture.Ppc64le => new Abi(0x4000, 0x8000, 202),
        _ => null,
    };
}

internal static class Errno
{
    public const int NoEntry = 2;
    public const int NoDeviceOrAddress = 6;
    public const int Again = 11;
    public const int NotDirectory = 20;
    public const int Loop = 40;
}

internal static partial class Native
{
    public const int AtEmptyPath = 0x1000;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtNoAutomount = 0x800;
    public const ulong ResolveNoSymlinks = 0x04;
    public const ulong ResolveBeneath = 0x08;
    public const uint StatxTypeAndSize = 0x1 | 0x200;
    public const int StatxSize = 256;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int OpenAt(SafeFileHandle directory, string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(SafeFileHandle directory, string path, int flags, uint mask, ref byte statxBuffer);

    // syscall(2), because libc has no openat2 wrapper before glibc 2.34 (none in musl) and getdents64 only since glibc 2.30.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static unsafe partial long Syscall(long number, SafeFileHandle fd, byte* first, void* second, nint size);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static unsafe partial long Syscall(long number, SafeFileHandle fd, byte* first, nint size);

    /// <summary>openat2(2) with the open_how struct { u64 flags; u64 mode; u64 resolve; }.</summary>
    public static unsafe long Openat2(long number, SafeFileHandle directory, string relative, ulong flags, ulong resolve)
    {
        var path = System.Text.Encoding.UTF8.GetBytes(relative + "\0");
        var how = stackalloc ulong[] { flags, 0, resolve };
        fixed (byte* p = path)
            return Syscall(number, directory, p, how, 3 * sizeof(ulong));
    }

    /// <summary>getdents64(2): fills the buffer with struct linux_dirent64 records; 0 at the end of the directory.</summary>
    public static unsafe long GetDents64(long number, SafeFileHandle directory, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
            return Syscall(number, directory, p, buffer.Length);
    }
}
