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

    private static ApiKey Limited(string name, int? rpm = null, int? tpm = null, int? concurrent = null) =>
        new(name, new byte[32], new HashSet<string> { "runs" }, null, new KeyLimits(rpm, tpm, concurrent));

    [Fact]
    public async Task Prune_ForgetsTheBucketsOfRemovedKeysAndOfLimitsTheFileNoLongerSets()
    {
        using var limiters = new KeyLimiters(TimeProvider.System);
        var alice = Limited("alice", rpm: 1, tpm: 10);
        var bob = Limited("bob", rpm: 1);
        Assert.True((await limiters.TakeRequestAsync(alice, 1, default)).Admitted);
        Assert.True((await limiters.TakeRequestAsync(bob, 1, default)).Admitted);
        limiters.Charge(alice, 10);
        Assert.False((await limiters.TakeRequestAsync(alice, 1, default)).Admitted);

        // alice now has 2 requests a minute and no token limit; bob is gone.
        var aliceNow = Limited("alice", rpm: 2);
        Assert.True((await limiters.TakeRequestAsync(aliceNow, 2, default)).Admitted);
        limiters.Prune([aliceNow]);

        Assert.Equal((1, 0, 0), limiters.Count);
        // Back at the old limit, alice starts from a full bucket rather than the spent one the old file left.
        Assert.True((await limiters.TakeRequestAsync(alice, 1, default)).Admitted);
        var kept = await limiters.TakeRequestAsync(aliceNow, 2, default);
        Assert.Equal((true, 0L), (kept.Admitted, kept.Remaining));
    }

    [Fact]
    public void Prune_DropsARemovedKeysRunPermitsOnlyOnceItsLastRunHasEnded()
    {
        using var limiters = new KeyLimiters(TimeProvider.System);
        var ci = Limited("ci", concurrent: 1);
        var lease = limiters.Runs(ci, 1).AttemptAcquire();
        Assert.True(lease.IsAcquired);

        limiters.Prune([]);
        Assert.Equal(1, limiters.Count.Runs);
        lease.Dispose();
        Assert.Equal(0, limiters.Count.Runs);

        // Removed while a run executes, then configured again before it ends: the run still counts, and stays counted.
        var running = limiters.Runs(ci, 1).AttemptAcquire();
        limiters.Prune([]);
        Assert.False(limiters.Runs(ci, 1).AttemptAcquire().IsAcquired);
        running.Dispose();
        Assert.Equal((1, 0), (limiters.Count.Runs, limiters.Runs(ci, 1).InFlight));
    }
}
