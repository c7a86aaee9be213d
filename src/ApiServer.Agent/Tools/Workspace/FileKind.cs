using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ApiServer.Agent.Tools.Workspace;

internal enum FileKind
{
    Missing,
    Regular,
    Directory,

    /// <summary>Character or block device, FIFO, socket: opening one can block forever or read without end.</summary>
    Special,
}

/// <summary>
/// Tells regular files from devices, FIFOs and sockets. .NET reports all of those as FileAttributes.Normal on Linux,
/// so we ask the kernel with statx(2), whose struct layout is the same on every Linux architecture
/// (unlike struct stat). Elsewhere we fall back to what FileAttributes can tell.
/// </summary>
internal static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int StxModeOffset = 28;
    private const int StatxSize = 256;

    public static FileKind Of(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            Span<byte> buffer = stackalloc byte[StatxSize];
            if (Statx(AtFdCwd, path, 0, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0)
                return FileKind.Missing;
            var mode = BinaryPrimitives.ReadUInt16LittleEndian(buffer[StxModeOffset..]) & 0xF000;
            if (!BitConverter.IsLittleEndian)
                mode = BinaryPrimitives.ReadUInt16BigEndian(buffer[StxModeOffset..]) & 0xF000;
            return mode switch
            {
                0x8000 => FileKind.Regular,
                0x4000 => FileKind.Directory,
                _ => FileKind.Special,
            };
        }

        if (Directory.Exists(path))
            return FileKind.Directory;
        if (!File.Exists(path))
            return FileKind.Missing;
        return (File.GetAttributes(path) & FileAttributes.Device) != 0 ? FileKind.Special : FileKind.Regular;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte statxBuffer);
}
