namespace ApiServer.Tests.Infrastructure;

/// <summary>The real clock plus an offset the test can advance, for TTLs and retention without waiting. Timers stay real.</summary>
public sealed class ShiftableTimeProvider : TimeProvider
{
    private long _offsetTicks;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
}
