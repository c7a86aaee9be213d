using ApiServer.Access;

namespace ApiServer.Tests.Access;

public sealed class KeyLimitersTests
{
    private static ApiKey Key(int concurrent) =>
        new("ci", new byte[32], new HashSet<string> { "runs" }, null, new KeyLimits(ConcurrentRuns: concurrent));

    [Fact]
    public void RunPermits_SurviveAReloadThatChangesTheLimit()
    {
        using var limiters = new KeyLimiters(TimeProvider.System);
        using var first = limiters.Runs(Key(1), 1).AttemptAcquire();
        Assert.True(first.IsAcquired);
        Assert.False(limiters.Runs(Key(1), 1).AttemptAcquire().IsAcquired);

        // The file now says 2: the run already executing still counts, so one more fits, not two.
        using var second = limiters.Runs(Key(2), 2).AttemptAcquire();
        Assert.True(second.IsAcquired);
        Assert.False(limiters.Runs(Key(2), 2).AttemptAcquire().IsAcquired);

        // Back to 1 with two in flight: refused until both have ended below the limit.
        first.Dispose();
        Assert.False(limiters.Runs(Key(1), 1).AttemptAcquire().IsAcquired);
        second.Dispose();
        second.Dispose(); // released once only
        Assert.Equal(0, limiters.Runs(Key(1), 1).InFlight);
        Assert.True(limiters.Runs(Key(1), 1).AttemptAcquire().IsAcquired);
    }
}
