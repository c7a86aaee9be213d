using System.Diagnostics;
using System.Runtime;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// Warm-up that ends when the JIT has settled, not after a fixed count. Tiered compilation keeps recompiling hot methods
/// (tier 0, then instrumented, then tier 1) for many seconds after a path first runs; on 2 cores the background compiler
/// competes with the measurement, and a path with more methods (the gateway) stays slow for longer than a simple one (the
/// fake). The gateway runs in this process, so <see cref="JitInfo"/> sees its compilations.
/// </summary>
public static class Warmup
{
    /// <summary>At most this many methods compiled in a quiet window counts as settled (timers and the like keep trickling).</summary>
    private const int QuietMethods = 5;

    public sealed record Result(int Rounds, TimeSpan Elapsed, long MethodsCompiled, bool Settled)
    {
        public override string ToString() =>
            $"{Rounds} rounds in {Elapsed.TotalSeconds:0.0} s, {MethodsCompiled} methods compiled, " + (Settled ? "JIT settled" : "JIT still compiling at the cap");
    }

    /// <summary>
    /// Runs at least <paramref name="minRounds"/> of <paramref name="round"/>, then more until a whole <paramref name="quiet"/>
    /// window compiles no more than a handful of methods; never past <paramref name="cap"/>, which bounds the whole warm-up
    /// (on a machine busy with other work even the minimum can take long, and a smoke run must stay short).
    /// </summary>
    public static async Task<Result> UntilJitSettledAsync(Func<Task> round, int minRounds, TimeSpan quiet, TimeSpan cap)
    {
        var clock = Stopwatch.StartNew();
        var startCount = JitInfo.GetCompiledMethodCount();
        var rounds = 0;
        for (; rounds < minRounds && clock.Elapsed < cap; rounds++)
            await round();

        var windowStart = clock.Elapsed;
        var windowCount = JitInfo.GetCompiledMethodCount();
        while (clock.Elapsed < cap)
        {
            await round();
            rounds++;
            var count = JitInfo.GetCompiledMethodCount();
            if (count - windowCount > QuietMethods)
                (windowStart, windowCount) = (clock.Elapsed, count);
            else if (clock.Elapsed - windowStart >= quiet)
                return new Result(rounds, clock.Elapsed, count - startCount, true);
        }
        return new Result(rounds, clock.Elapsed, JitInfo.GetCompiledMethodCount() - startCount, false);
    }
}
