using ApiServer.Bench.Infrastructure;
using ApiServer.Tests.Cluster;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Throughput through nginx with one and with three replicas on PostgreSQL: the cluster the tests run (ReplicaCluster, linked
/// from tests/), its built-in offline model, every request a stored response (a write in PostgreSQL). One cluster of three
/// replicas runs throughout; a second nginx in front of its first replica alone is the one-replica side, and windows alternate
/// between the two so that drift on the shared machine cancels.
/// </summary>
public static class ClusterScenario
{
    private const string Path = "v1/responses";
    private const int Concurrency = 32;

    public static async Task RunAsync(Settings settings, Report report)
    {
        await using var cluster = await ReplicaCluster.StartAsync(new ReplicaClusterOptions
        {
            Replicas = 3,
            // The balancer must not be what limits three replicas: one worker per core.
            BalancerWorkers = Environment.ProcessorCount,
        });
        using var single = await NginxBalancer.StartAsync([cluster.Replicas[0].Address], Environment.ProcessorCount);
        using var one = Wire.Client(single.BaseAddress);
        using var three = Wire.Client(cluster.BalancerUrl);
        var counter = new long[1];

        // The servers are other processes: their JIT is warmed by load, not measured by this process's counters.
        for (var i = 0; i < (settings.Quick ? 1 : 3); i++)
        {
            await WindowAsync(one, settings.ThroughputWindow, counter, store: true);
            await WindowAsync(three, settings.ThroughputWindow, counter, store: true);
        }

        var figures = new FigureSet();
        long errors = 0;
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            var sides = new[] { ("one", one, true), ("three", three, true), ("one-unstored", one, false) };
            foreach (var (name, client, store) in sides.Skip(rep % 3).Concat(sides.Take(rep % 3)))
            {
                var (perSecond, failed, latencies) = await WindowAsync(client, settings.ThroughputWindow, counter, store);
                errors += failed;
                figures.Add(name + " rps", perSecond);
                figures.Add(name + " p50", Stats.Percentile(latencies, 50));
                figures.Add(name + " p99", Stats.Percentile(latencies, 99));
            }
            figures.Add("ratio", figures["three rps"].Reps[^1] / figures["one rps"].Reps[^1]);
            Console.WriteLine($"  cluster rep {rep + 1}: 1 replica {figures["one rps"].Reps[^1]:0} rps, 3 replicas {figures["three rps"].Reps[^1]:0} rps");
        }

        report.Row($"Cluster: stored responses/s through nginx at concurrency {Concurrency}, 1 vs 3 replicas (PostgreSQL)",
            $"{figures["one rps"].Short(" rps", "0")} vs {figures["three rps"].Short(" rps", "0")} ({figures["ratio"].Short("×", "0.00")}); unstored on 1 replica {figures["one-unstored rps"].Short(" rps", "0")}; {errors} errors",
            "—", null);
        report.Section("Cluster: throughput through nginx, 1 and 3 replicas on PostgreSQL",
            $"""
            Closed loop: {Concurrency} workers each send the next `POST /v1/responses` (offline model, stored: one PostgreSQL
            transaction per request) as soon as the last one finished, for {settings.ThroughputWindow.TotalSeconds:0.#} s per window, through nginx
            (Debian's, {Environment.ProcessorCount} workers, the config of `tests/ApiServer.Tests/Cluster/NginxBalancer.cs`, as in
            docs/deployment.md). Three replicas and PostgreSQL run throughout; the one-replica side is a second nginx in front of
            the first replica alone. A third side sends the same requests with `"store": false` to the one replica, so the
            difference is what storing costs. {settings.Reps} repetitions rotating the three sides, after a warm-up under the same
            load. Errors: {errors}.

            Everything — driver, nginx, PostgreSQL and every replica — shares this machine's {Environment.ProcessorCount} cores, so three
            replicas cannot add CPU here: this measures what the balancer and the spread cost or save on one host, not how a
            deployment with a host per replica scales. On separate hosts each replica brings its own cores, and the database
            becomes the shared part.

            {Report.FigureTable([
                ("1 replica, requests/s", figures["one rps"], ""),
                ("3 replicas, requests/s", figures["three rps"], ""),
                ("**ratio 3 / 1**", figures["ratio"], ""),
                ("1 replica, `store: false`, requests/s", figures["one-unstored rps"], ""),
                ("1 replica, latency p50", figures["one p50"], " ms"),
                ("1 replica, latency p99", figures["one p99"], " ms"),
                ("3 replicas, latency p50", figures["three p50"], " ms"),
                ("3 replicas, latency p99", figures["three p99"], " ms"),
            ], "0.00")}
            """);
    }

    private static async Task<(double PerSecond, long Failed, List<double> Latencies)> WindowAsync(HttpClient client, TimeSpan window, long[] counter, bool store)
    {
        var (perSecond, _, failed, latencies) = await ClosedLoop.RunAsync(Concurrency, window, counter, n =>
            Wire.PostAsync(client, Path, $$"""{"model":"agent","store":{{(store ? "true" : "false")}},"input":"Say hello to cluster benchmark request {{n}}."}"""));
        return (perSecond, failed, latencies);
    }
}
