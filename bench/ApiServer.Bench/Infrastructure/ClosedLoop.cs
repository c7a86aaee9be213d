using System.Diagnostics;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// A closed-loop load window: <c>concurrency</c> workers each send the next request as soon as the last one finished, until the
/// window ends. A request that fails with <see cref="HttpRequestException"/> counts as an error and the worker goes on.
/// </summary>
public static class ClosedLoop
{
    /// <param name="send">Sends request number n (unique across windows, from <paramref name="counter"/>) and returns its latency in ms.</param>
    public static async Task<(double PerSecond, long Completed, long Failed, List<double> Latencies)> RunAsync(
        int concurrency, TimeSpan window, long[] counter, Func<long, Task<double>> send)
    {
        long completed = 0, failed = 0;
        var latencies = new List<double>[concurrency];
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>(4096);
            while (clock.Elapsed < window)
            {
                try
                {
                    mine.Add(await send(Interlocked.Increment(ref counter[0])));
                    Interlocked.Increment(ref completed);
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref failed);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var elapsed = clock.Elapsed.TotalSeconds;
        return (completed / elapsed, completed, failed, latencies.SelectMany(l => l).ToList());
    }
}
