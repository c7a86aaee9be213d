using System.Runtime.InteropServices;
using System.Text;

namespace ApiServer.Agent.Tests.Tools;

/// <summary>The few POSIX calls the path-guard tests need to play the attacker: FIFOs, hard links and atomic renames.</summary>
internal static class Posix
{
    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;

    public static void MakeFifo(string path)
    {
        if (mkfifo(Bytes(path), Convert.ToUInt32("600", 8)) != 0)
            throw new IOException($"mkfifo {path} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>
    /// Swaps two names atomically (renameat2 RENAME_EXCHANGE), so a reader sees one or the other and never a gap. Where the
    /// file system can't exchange, two plain renames do the same with a short gap.
    /// </summary>
    public static void Exchange(string a, string b, string spare)
    {
        if (renameat2(AtFdCwd, Bytes(a), AtFdCwd, Bytes(b), RenameExchange) == 0)
            return;
        Rename(a, spare);
        Rename(b, a);
        Rename(spare, b);
    }

    public static void HardLink(string existing, string link)
    {
        if (link_(Bytes(existing), Bytes(link)) != 0)
            throw new IOException($"link {existing} {link} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Releases any reader blocked opening the FIFO (a writer opening non-blocking succeeds only if one is).</summary>
    public static void UnblockFifoReaders(string path)
    {
        const int WriteOnlyNonBlocking = 0x1 | 0x800;
        var fd = open(Bytes(path), WriteOnlyNonBlocking);
        if (fd >= 0)
            close(fd);
    }

    private static void Rename(string from, string to)
    {
        if (rename(Bytes(from), Bytes(to)) != 0)
            throw new IOException($"rename {from} {to} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    private static byte[] Bytes(string path) => Encoding.UTF8.GetBytes(path + "\0");

#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe blocks, which this test project doesn't enable for three calls.
    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(byte[] path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int open(byte[] path, int flags);

    [DllImport("libc")]
    private static extern int close(int fd);

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int link_(byte[] existing, byte[] link);

    [DllImport("libc", SetLastError = true)]
    private static extern int rename(byte[] from, byte[] to);

    [DllImport("libc", SetLastError = true)]
    private static extern int renameat2(int olddirfd, byte[] from, int newdirfd, byte[] to, uint flags);
#pragma warning restore SYSLIB1054
}
