using System.Diagnostics;
using ApiServer.Bench.Infrastructure;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 2: closed-loop throughput at concurrency 64 for a fixed window, gateway vs direct, alternating windows so drift
/// cancels. The gateway side needs CPU for the driver, the gateway and the fake; the direct side only for the driver and the
/// fake: on 2 shared cores the ratio is bounded by how much CPU the gateway spends per request relative to the fake.
/// </summary>
public static class ThroughputScenario
{
    private const string Path = "v1/chat/completions";

    public static async Task RunAsync(Settings settings, Report report)
    {
        await using var rig = await Rig.StartAsync();
        var counter = new long[1];

        var warmup = await Warmup.UntilJitSettledAsync(async () =>
        {
            await WindowAsync(rig.Through, false, settings.Concurrency, TimeSpan.FromSeconds(0.5), counter, quiet: true);
            await WindowAsync(rig.Direct, true, settings.Concurrency, TimeSpan.FromSeconds(0.2), counter, quiet: true);
            await WindowAsync(rig.Direct, false, settings.Concurrency, TimeSpan.FromSeconds(0.2), counter, quiet: true);
        }, 2, settings.JitQuiet, settings.WarmupCap);
        Console.WriteLine($"  throughput warm-up: {warmup}");

        var figures = new FigureSet();
        long errors = 0;
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            var sides = new (string Name, HttpClient Client, bool Stream)[] { ("gateway", rig.Through, false), ("direct-stream", rig.Direct, true), ("direct-json", rig.Direct, false) };
            var rotated = sides.Skip(rep % 3).Concat(sides.Take(rep % 3));
            var rps = new Dictionary<string, double>();
            foreach (var (name, client, stream) in rotated)
            {
                var (perSecond, failed, latencies) = await WindowAsync(client, stream, settings.Concurrency, settings.ThroughputWindow, counter);
                rps[name] = perSecond;
                errors += failed;
                figures.Add(name + " rps", perSecond);
                figures.Add(name + " p50", Stats.Percentile(latencies, 50));
                figures.Add(name + " p99", Stats.Percentile(latencies, 99));
            }
            figures.Add("ratio", rps["gateway"] / rps["direct-stream"]);
            figures.Add("ratio-json", rps["gateway"] / rps["direct-json"]);
            Console.WriteLine($"  throughput rep {rep + 1}: gateway {rps["gateway"]:0} rps, direct-stream {rps["direct-stream"]:0} rps, ratio {figures["ratio"].Reps[^1]:0.00}");
        }

        var ratio = figures["ratio"];
        report.Row($"2. Throughput at concurrency {settings.Concurrency}, gateway/direct", $"{ratio.Short("", "0.00")} (min {Report.N(ratio.Min)}, max {Report.N(ratio.Max)}); {figures["gateway rps"].Short(" rps", "0")} vs {figures["direct-stream rps"].Short(" rps", "0")}; {errors} errors", "≥ 0.7", ratio.Median >= 0.7);
        report.Section($"2. Throughput at concurrency {settings.Concurrency}",
            $"""
            Closed loop: {settings.Concurrency} workers each send the next request as soon as the last one finished, for {settings.ThroughputWindow.TotalSeconds:0.#} s per
            window; {settings.Reps} repetitions of (gateway, direct stream:true, direct stream:false) in rotating order, after a warm-up under the same load until the JIT settled ({warmup}). Every request is a
            new conversation. The ratio uses direct `stream:true` as the baseline (what the gateway itself asks of the upstream). Errors: {errors}.

            {Report.FigureTable([
                ("gateway requests/s", figures["gateway rps"], ""),
                ("direct stream:true requests/s", figures["direct-stream rps"], ""),
                ("direct stream:false requests/s", figures["direct-json rps"], ""),
                ("**ratio gateway / direct stream:true**", ratio, ""),
                ("ratio gateway / direct stream:false", figures["ratio-json"], ""),
                ("gateway latency p50 under load", figures["gateway p50"], " ms"),
                ("gateway latency p99 under load", figures["gateway p99"], " ms"),
                ("direct stream:true latency p50 under load", figures["direct-stream p50"], " ms"),
                ("direct stream:true latency p99 under load", figures["direct-stream p99"], " ms"),
            ], "0.00")}
            """);
    }

    /// <summary>
    /// Load for a profiler attached from outside (<c>--only profile-gateway</c>); reports nothing to the doc. Prints the types
    /// allocated over the second half of the windows. BENCH_PROFILE_WINDOWS (5 s each, default 6), BENCH_PROFILE_CONCURRENCY
    /// (default the scenario's) and BENCH_PROFILE_DIRECT=1 (the fake alone, stream:true: the baseline to compare with).
    /// </summary>
    public static async Task ProfileAsync(Settings settings)
    {
        await using var rig = await Rig.StartAsync();
        using var allocations = new AllocationSampler();
        var counter = new long[1];
        var windows = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PROFILE_WINDOWS"), out var n) ? n : 6;
        var concurrency = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PROFILE_CONCURRENCY"), out var c) ? c : settings.Concurrency;
        var direct = Environment.GetEnvironmentVariable("BENCH_PROFILE_DIRECT") == "1";
        for (var i = 0; i < windows; i++)
        {
            allocations.Enabled = i >= windows / 2;
            await WindowAsync(direct ? rig.Direct : rig.Through, direct, concurrency, TimeSpan.FromSeconds(5), counter);
        }
        Console.WriteLine("  allocated types (sampled, whole process):");
        foreach (var line in allocations.Top(30))
            Console.WriteLine("    " + line);
    }

    private static async Task<(double PerSecond, long Failed, List<double> Latencies)> WindowAsync(HttpClient client, bool stream, int concurrency, TimeSpan window, long[] counter, bool quiet = false)
    {
        long completed = 0, failed = 0;
        var counters = ProcessCounters.Start();
        var latencies = new List<double>[concurrency];
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>(4096);
            while (clock.Elapsed < window)
            {
                try
                {
                    mine.Add(await Wire.PostAsync(client, Path, Wire.ChatBody(stream, Interlocked.Increment(ref counter[0]))));
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
        var perRequest = counters.Stop().PerRequest(completed);
        if (!quiet)
            Console.WriteLine($"    {client.BaseAddress} stream={stream}: {completed / elapsed:0} rps; {perRequest}");
        return (completed / elapsed, failed, latencies.SelectMany(l => l).ToList());
    }
}
