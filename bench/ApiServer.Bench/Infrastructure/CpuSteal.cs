namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// The share of the machine's CPU time the hypervisor gave to other guests ("steal" in /proc/stat) between two readings.
/// On a shared VM it is the clearest sign of why one run's figures differ from another's. Null where /proc/stat is absent.
/// </summary>
public sealed class CpuSteal
{
    private readonly (long Steal, long Total)? _start = Read();

    public static CpuSteal Start() => new();

    /// <summary>Steal as a percentage of all CPU time since <see cref="Start"/>.</summary>
    public double? Percent()
    {
        if (_start is not { } start || Read() is not { } now || now.Total == start.Total)
            return null;
        return 100.0 * (now.Steal - start.Steal) / (now.Total - start.Total);
    }

    private static (long Steal, long Total)? Read()
    {
        try
        {
            // "cpu  user nice system idle iowait irq softirq steal guest guest_nice", in clock ticks; guest time is already in user.
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields[0] != "cpu" || fields.Length < 9)
                return null;
            var ticks = fields[1..9].Select(long.Parse).ToArray();
            return (ticks[7], ticks.Sum());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
