using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// Which types this process allocates, from the runtime's own sampling (a GCAllocationTick event about every 100 KB, naming
/// the type that crossed it), read in process because no trace tools are installed here. It covers the whole process (driver,
/// fake upstream and gateway), so compare a gateway run with a direct one. Sampling only while <see cref="Enabled"/> is set.
/// </summary>
public sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new();

    public volatile bool Enabled;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!Enabled || e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.Payload is null || e.PayloadNames is null)
            return;
        var type = e.Payload[e.PayloadNames.IndexOf("TypeName")] as string ?? "?";
        var amount = Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("AllocationAmount64")], System.Globalization.CultureInfo.InvariantCulture);
        _bytes.AddOrUpdate(type, amount, (_, total) => total + amount);
    }

    /// <summary>The <paramref name="count"/> types with the most sampled bytes, as shares of all sampled bytes.</summary>
    public IEnumerable<string> Top(int count)
    {
        var total = Math.Max(1, _bytes.Values.Sum());
        return _bytes.OrderByDescending(kv => kv.Value).Take(count).Select(kv => $"{kv.Value * 100.0 / total,5:0.0}%  {kv.Key}");
    }
}
