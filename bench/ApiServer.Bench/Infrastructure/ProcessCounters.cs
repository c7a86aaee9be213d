using System.Diagnostics;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// In-process counters, read around a measured window to see where time goes without external tools (dotnet-counters is
/// not available offline): first-chance exceptions, GCs, allocated bytes, lock contentions, thread-pool threads, CPU time.
/// They cover the whole process (driver, fake upstream and gateway alike), so compare them between sides of one run.
/// </summary>
public sealed class ProcessCounters
{
    private static long s_exceptions;

    static ProcessCounters() => AppDomain.CurrentDomain.FirstChanceException += (_, _) => Interlocked.Increment(ref s_exceptions);

    private readonly long _exceptions = Interlocked.Read(ref s_exceptions);
    private readonly int _gen0 = GC.CollectionCount(0);
    private readonly int _gen2 = GC.CollectionCount(2);
    private readonly long _allocated = GC.GetTotalAllocatedBytes();
    private readonly long _contentions = Monitor.LockContentionCount;
    private readonly TimeSpan _cpu = Process.GetCurrentProcess().TotalProcessorTime;

    public static void Install() => _ = Interlocked.Read(ref s_exceptions);

    public static ProcessCounters Start() => new();

    public Delta Stop() => new(
        Interlocked.Read(ref s_exceptions) - _exceptions,
        GC.CollectionCount(0) - _gen0,
        GC.CollectionCount(2) - _gen2,
        GC.GetTotalAllocatedBytes() - _allocated,
        Monitor.LockContentionCount - _contentions,
        (Process.GetCurrentProcess().TotalProcessorTime - _cpu).TotalMilliseconds);

    public sealed record Delta(long Exceptions, int Gen0, int Gen2, long AllocatedBytes, long LockContentions, double CpuMs)
    {
        public string PerRequest(long requests) => requests == 0 ? "" :
            $"CPU {CpuMs / requests:0.000} ms/req, alloc {AllocatedBytes / requests / 1024.0:0.0} KB/req, exceptions {Exceptions / (double)requests:0.00}/req, " +
            $"lock contentions {LockContentions / (double)requests:0.00}/req, GCs gen0 {Gen0} gen2 {Gen2}";
    }
}
