using System.Diagnostics;
using ApiServer.Bench.Infrastructure;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 2: closed-loop throughput at concurrency 64 for a fixed window, gateway vs direct, alternating windows so drift
/// cancels. The gateway side needs CPU for the driver, the gateway and the fake; the direct side only for the driver and the
/// fake: on 2 shared cores the ratio is bounded by how much CPU the gateway spends per request relative to the fake. A third
/// side, the <see cref="BareProxy"/>, measures that bound: what a gateway that does nothing but the same exchange reaches.
/// </summary>
public static class ThroughputScenario
{
    private const string Path = "v1/chat/completions";

    public static async Task RunAsync(Settings settings, Report report)
    {
        await using var rig = await Rig.StartAsync();
        await using var bare = await BareProxy.StartAsync(rig.Upstream.BaseUrl);
        using var bareClient = Wire.Client(bare.BaseAddress);
        var counter = new long[1];

        var warmup = await Warmup.UntilJitSettledAsync(async () =>
        {
            await WindowAsync(rig.Through, false, settings.Concurrency, TimeSpan.FromSeconds(0.5), counter, quiet: true);
            await WindowAsync(bareClient, false, settings.Concurrency, TimeSpan.FromSeconds(0.2), counter, quiet: true);
            await WindowAsync(rig.Direct, true, settings.Concurrency, TimeSpan.FromSeconds(0.2), counter, quiet: true);
            await WindowAsync(rig.Direct, false, settings.Concurrency, TimeSpan.FromSeconds(0.2), counter, quiet: true);
        }, 2, settings.JitQuiet, settings.WarmupCap);
        Console.WriteLine($"  throughput warm-up: {warmup}");

        var figures = new FigureSet();
        long errors = 0;
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            var sides = new (string Name, HttpClient Client, bool Stream)[] { ("gateway", rig.Through, false), ("bare", bareClient, false), ("direct-stream", rig.Direct, true), ("direct-json", rig.Direct, false) };
            var rotated = sides.Skip(rep % sides.Length).Concat(sides.Take(rep % sides.Length));
            var rps = new Dictionary<string, double>();
            foreach (var (name, client, stream) in rotated)
            {
                var (perSecond, failed, latencies, used) = await WindowAsync(client, stream, settings.Concurrency, settings.ThroughputWindow, counter);
                rps[name] = perSecond;
                figures.Add(name + " cpu", used.CpuMs);
                figures.Add(name + " alloc", used.AllocatedKb);
                errors += failed;
                figures.Add(name + " rps", perSecond);
                figures.Add(name + " p50", Stats.Percentile(latencies, 50));
                figures.Add(name + " p99", Stats.Percentile(latencies, 99));
            }
            figures.Add("ratio", rps["gateway"] / rps["direct-stream"]);
            figures.Add("ratio-json", rps["gateway"] / rps["direct-json"]);
            figures.Add("bare ratio", rps["bare"] / rps["direct-stream"]);
            figures.Add("gateway/bare", rps["gateway"] / rps["bare"]);
            Console.WriteLine($"  throughput rep {rep + 1}: gateway {rps["gateway"]:0} rps, bare proxy {rps["bare"]:0} rps, direct-stream {rps["direct-stream"]:0} rps, ratio {figures["ratio"].Reps[^1]:0.00} (bare proxy {figures["bare ratio"].Reps[^1]:0.00})");
        }

        var ratio = figures["ratio"];
        report.Row($"2. Throughput at concurrency {settings.Concurrency}, gateway/direct", $"{ratio.Short("", "0.00")} (min {Report.N(ratio.Min)}, max {Report.N(ratio.Max)}); {figures["gateway rps"].Short(" rps", "0")} vs {figures["direct-stream rps"].Short(" rps", "0")}; a bare proxy reaches {figures["bare ratio"].Short("", "0.00")}; {errors} errors", "≥ 0.7", ratio.Median >= 0.7);
        report.Section($"2. Throughput at concurrency {settings.Concurrency}",
            $"""
            Closed loop: {settings.Concurrency} workers each send the next request as soon as the last one finished, for {settings.ThroughputWindow.TotalSeconds:0.#} s per
            window; {settings.Reps} repetitions of (gateway, bare proxy, direct stream:true, direct stream:false) in rotating order, after a warm-up under the same load until the JIT settled ({warmup}). Every request is a
            new conversation. The ratio uses direct `stream:true` as the baseline (what the gateway itself asks of the upstream). Errors: {errors}.

            The **bare proxy** is the same exchange with nothing else (`bench/ApiServer.Bench/Infrastructure/BareProxy.cs`, in this
            process): Kestrel takes the `stream:false` request, HttpClient sends the messages to the fake as the same `stream:true`
            request the gateway sends, the SSE answer is read and joined, and one JSON completion goes back. No validation,
            sessions, agent loop, resilience, storage or auth. Its ratio is what any .NET gateway that makes a real HTTP call can
            reach on this rig, and "gateway / bare proxy" is the share of that the gateway keeps. CPU per request is the whole
            process's CPU time over the window ÷ requests (driver, fake and the side under test together).

            {Report.FigureTable([
                ("gateway requests/s", figures["gateway rps"], ""),
                ("bare proxy requests/s", figures["bare rps"], ""),
                ("direct stream:true requests/s", figures["direct-stream rps"], ""),
                ("direct stream:false requests/s", figures["direct-json rps"], ""),
                ("**ratio gateway / direct stream:true**", ratio, ""),
                ("ratio gateway / direct stream:false", figures["ratio-json"], ""),
                ("ratio bare proxy / direct stream:true", figures["bare ratio"], ""),
                ("ratio gateway / bare proxy", figures["gateway/bare"], ""),
                ("gateway latency p50 under load", figures["gateway p50"], " ms"),
                ("gateway latency p99 under load", figures["gateway p99"], " ms"),
                ("direct stream:true latency p50 under load", figures["direct-stream p50"], " ms"),
                ("direct stream:true latency p99 under load", figures["direct-stream p99"], " ms"),
            ], "0.00")}
            {Report.FigureTable([
                ("CPU per request, gateway", figures["gateway cpu"], " ms"),
                ("CPU per request, bare proxy", figures["bare cpu"], " ms"),
                ("CPU per request, direct stream:true", figures["direct-stream cpu"], " ms"),
                ("allocated per request, gateway", figures["gateway alloc"], " KB"),
                ("allocated per request, bare proxy", figures["bare alloc"], " KB"),
                ("allocated per request, direct stream:true", figures["direct-stream alloc"], " KB"),
            ], "0.000")}
            """);
    }

    /// <summary>
    /// Load for a profiler attached from outside (<c>--only profile-gateway</c>); reports nothing to the doc. Prints the types
    /// allocated over the second half of the windows. BENCH_PROFILE_WINDOWS (5 s each, default 6), BENCH_PROFILE_CONCURRENCY
    /// (default the scenario's) and BENCH_PROFILE_DIRECT=1 (the fake alone, stream:true: the baseline to compare with) and BENCH_PROFILE_BARE=1 (the bare proxy).
    /// </summary>
    public static async Task ProfileAsync(Settings settings)
    {
        await using var rig = await Rig.StartAsync();
        using var allocations = new AllocationSampler();
        var counter = new long[1];
        var windows = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PROFILE_WINDOWS"), out var n) ? n : 6;
        var concurrency = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PROFILE_CONCURRENCY"), out var c) ? c : settings.Concurrency;
        var direct = Environment.GetEnvironmentVariable("BENCH_PROFILE_DIRECT") == "1";
        await using var bare = Environment.GetEnvironmentVariable("BENCH_PROFILE_BARE") == "1" ? await BareProxy.StartAsync(rig.Upstream.BaseUrl) : null;
        using var bareClient = bare is null ? null : Wire.Client(bare.BaseAddress);
        for (var i = 0; i < windows; i++)
        {
            allocations.Enabled = i >= windows / 2;
            await WindowAsync(direct ? rig.Direct : bareClient ?? rig.Through, direct, concurrency, TimeSpan.FromSeconds(5), counter);
        }
        Console.WriteLine("  allocated types (sampled, whole process):");
        foreach (var line in allocations.Top(30))
            Console.WriteLine("    " + line);
    }

    private static async Task<(double PerSecond, long Failed, List<double> Latencies, (double CpuMs, double AllocatedKb) PerRequest)> WindowAsync(HttpClient client, bool stream, int concurrency, TimeSpan window, long[] counter, bool quiet = false)
    {
        var counters = ProcessCounters.Start();
        var (perSecond, completed, failed, latencies) = await ClosedLoop.RunAsync(concurrency, window, counter,
            n => Wire.PostAsync(client, Path, Wire.ChatBody(stream, n)));
        var used = counters.Stop();
        if (!quiet)
            Console.WriteLine($"    {client.BaseAddress} stream={stream}: {perSecond:0} rps; {used.PerRequest(completed)}");
        var perRequest = completed == 0 ? (0, 0) : (used.CpuMs / completed, used.AllocatedBytes / 1024.0 / completed);
        return (perSecond, failed, latencies, perRequest);
    }
}
