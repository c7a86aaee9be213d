using System.Diagnostics;
using System.Text.Json;
using ApiServer.Bench.Infrastructure;
using Microsoft.Data.Sqlite;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 5: a long previous_response_id chain through POST /v1/responses. Storage growth (responses.db bytes at N vs
/// N/10 turns) and turn latency deep in the chain vs near its start. Latency is probed by branching: a new turn whose parent
/// is turn 999 (a 1,000th turn) interleaved with a new turn whose parent is turn 9 (a 10th turn), so drift hits both alike.
/// The full history goes to the upstream every turn, so the fake's own cost grows too; the same upstream bodies are replayed
/// straight to the fake, interleaved, to separate its growth from ours.
/// </summary>
public static class ChainScenario
{
    private const string Path = "v1/responses";

    public static async Task RunAsync(Settings settings, Report report)
    {
        var runs = new List<ChainRun>();
        foreach (var backend in BenchPostgres.Backends)
        {
            Console.WriteLine($"  chain on {backend}");
            runs.Add(await MeasureAsync(settings, backend));
        }
        var turns = settings.ChainTurns;
        var small = settings.ChainSmall;
        foreach (var run in runs)
        {
            var (on, target, met) = run.Backend == BenchPostgres.Sqlite
                ? ("", ("≤ 12", "≤ 1.5"), (run.BytesRatio <= 12, run.Figures["ratio"].Median <= 1.5))
                : ($" on {run.Backend}", ("report", "report"), ((bool?)null, (bool?)null));
            var ratio = run.Figures["ratio"];
            report.Row($"5. Chain growth{on}: DB bytes at {turns} vs {small} turns", $"{Report.N(run.BytesRatio)}× ({run.BytesLarge / 1024.0:0} KB vs {run.BytesSmall / 1024.0:0} KB)", target.Item1, met.Item1);
            report.Row($"5. Chain growth{on}: p50 turn latency at {turns} vs 10", $"{ratio.Short("×", "0.00")} (min {Report.N(ratio.Min)}, max {Report.N(ratio.Max)}); {run.Figures["far p50"].Short(" ms", "0.00")} vs {run.Figures["near p50"].Short(" ms", "0.00")}; gateway-added part {run.Figures["added ratio"].Short("×", "0.00")}", target.Item2, met.Item2);
        }
        var backends = runs.Select(r => r.Backend).ToList();
        var first = runs[0];
        report.Section("5. Chain growth",
            $"""
            One chain of {turns} turns (`POST /v1/responses`, non-streaming, `store` on, each turn's `previous_response_id` = the turn before),
            built sequentially on each backend in turn ({string.Join(", ", runs.Select(r => $"{r.Backend} in {r.BuildSeconds:0.0} s"))}). The gateway sends the whole history to the upstream every turn: at turn {turns} the
            upstream request body is {first.UpstreamBodyLarge / 1024.0:0} KB ({2 * turns - 1} messages), and the fake scans all of it (as it arrives), so part of the growth is the upstream's, not ours.
            {(runs.Count > 1 ? "PostgreSQL runs on the server in `APISERVER_BENCH_POSTGRES`, a new database for the run, with the gateway in this process as with SQLite." : BenchPostgres.NotMeasured)}

            **Storage.** SQLite: `responses.db` after `PRAGMA wal_checkpoint(TRUNCATE)`, measured as `page_count × page_size`. PostgreSQL: `pg_total_relation_size`
            (heap, TOAST and indexes) of the three response tables after `VACUUM`. Payload is message bodies + response JSON.

            | Backend | at {small} turns | at {turns} turns | growth ({turns / small}× the turns) | payload {small} → {turns} turns |
            |---|---:|---:|---:|---:|
            {string.Join("\n", runs.Select(r => $"| {r.Backend} | {r.BytesSmall / 1024.0:0.0} KB | {r.BytesLarge / 1024.0:0.0} KB | **{Report.N(r.BytesRatio)}×** | {r.PayloadSmall / 1024.0:0.0} → {r.PayloadLarge / 1024.0:0.0} KB ({Report.N(r.PayloadLarge / (double)r.PayloadSmall)}×) |"))}

            Each turn stores only what it added, so growth is linear.

            **Latency.** {settings.Reps} repetitions × {settings.ChainProbes} probe turns per depth, interleaved: a branch turn whose parent is turn 9 (so it is
            turn 10) and one whose parent is turn {turns - 1} (so it is turn {turns}). Each repetition also replays the upstream request the gateway sent for
            each depth straight to the fake ("direct"), so "added" = gateway − direct at the same depth. Before the probes, both depths and
            both direct bodies are warmed until the JIT settles ({string.Join("; ", runs.Select(r => $"{r.Backend}: {r.Warmup}"))}).

            {Report.CompareTable(backends, new (string, string, string)[]
            {
                ("turn 10 p50", "near p50", " ms"),
                ($"turn {turns} p50", "far p50", " ms"),
                ($"**ratio turn {turns} / turn 10**", "ratio", "×"),
                ("direct upstream call, turn-10 body, p50", "direct near p50", " ms"),
                ($"direct upstream call, turn-{turns} body, p50", "direct far p50", " ms"),
                ($"ratio of direct calls, turn {turns} / turn 10 (a gateway that added nothing)", "direct ratio", "×"),
                ("gateway-added at turn 10 p50", "added near p50", " ms"),
                ($"gateway-added at turn {turns} p50", "added far p50", " ms"),
                ($"ratio of gateway-added, turn {turns} / turn 10", "added ratio", "×"),
            }.Select(f => (f.Item1, runs.Select(r => r.Figures[f.Item2]).ToList(), f.Item3)), "0.00")}

            While building the chain, median turn latency: {string.Join("; ", runs.Select(r => $"{r.Backend} turns 6–15 {r.WindowNear:0.00} ms, turns {turns - 9}–{turns} {r.WindowFar:0.00} ms"))}.

            **Where the deep turn's time goes (ours).** A turn's history comes from the store's chain cache (each response's node holds its
            own messages and a link to its parent's); only a miss (after a restart, or a chain pushed out of the cache) reads it with one
            recursive query plus one JSON document per stored message. On PostgreSQL the cached read still asks the database whether the
            response is visible (so a delete through another replica is seen at once). Timed on the gateway's own database right after the probes:

            {string.Join("\n\n", runs.Select(r => $"{r.Backend}:\n\n{r.Breakdown}"))}

            The rest of our per-turn growth is the {2 * turns - 1}-message upstream request (~{first.UpstreamBodyLarge / 1024.0:0} KB): the body extends the
            previous turn's encoded history (shared chunks, only the new messages encoded), so what grows is sending it.
            """);
    }

    private sealed record ChainRun(string Backend, FigureSet Figures, long BytesSmall, long BytesLarge, long PayloadSmall, long PayloadLarge,
        double BuildSeconds, int UpstreamBodyLarge, string Warmup, double WindowNear, double WindowFar, string Breakdown)
    {
        public double BytesRatio => BytesLarge / (double)BytesSmall;
    }

    private static async Task<ChainRun> MeasureAsync(Settings settings, string backend)
    {
        await using var postgres = backend == BenchPostgres.Postgres ? await BenchPostgres.CreateDatabaseAsync("chain") : null;
        var gatewaySettings = new Dictionary<string, string?> { ["API_SERVER_MAX_STORED_RESPONSES"] = "100000" };
        if (postgres is not null)
            gatewaySettings["API_SERVER_DATABASE_URL"] = postgres.Settings.ConnectionString;
        await using var rig = await Rig.StartAsync(gatewaySettings);
        var databaseBytes = () => postgres is null ? Task.FromResult(DatabaseBytes(rig.Gateway.DataDir)) : postgres.ResponseBytesAsync();
        var turns = settings.ChainTurns;
        var small = settings.ChainSmall;
        var ids = new string[turns];
        var buildLatency = new double[turns];
        long bytesSmall = 0, payloadSmall = 0;
        var build = Stopwatch.StartNew();
        for (var t = 0; t < turns; t++)
        {
            var (id, ms) = await TurnAsync(rig.Through, t == 0 ? null : ids[t - 1], $"Turn {t + 1}: tell me something new.");
            ids[t] = id;
            buildLatency[t] = ms;
            if (t + 1 == small)
                (bytesSmall, payloadSmall) = await databaseBytes();
            if ((t + 1) % 100 == 0)
                Console.WriteLine($"  chain turn {t + 1}: {ms:0.00} ms");
        }
        var (bytesLarge, payloadLarge) = await databaseBytes();
        var buildSeconds = build.Elapsed.TotalSeconds;
        var upstreamBodyLarge = rig.Upstream.Requests[^1].Body.GetRawText().Length;

        // Probes: depth 10 and depth N (parent = turn 9 and turn N-1), gateway and the equivalent direct upstream call, interleaved.
        var (nearBody, farBody) = (await ProbeBodyAsync(rig, ids[8]), await ProbeBodyAsync(rig, ids[turns - 2]));
        var figures = new FigureSet();
        var warmup = await Warmup.UntilJitSettledAsync(async () =>
        {
            await TurnAsync(rig.Through, ids[8], "warm-up");
            await TurnAsync(rig.Through, ids[turns - 2], "warm-up");
            await Wire.PostAsync(rig.Direct, "v1/chat/completions", nearBody);
            await Wire.PostAsync(rig.Direct, "v1/chat/completions", farBody);
        }, 3, settings.JitQuiet, settings.WarmupCap);
        Console.WriteLine($"  chain probe warm-up: {warmup}");
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            var near = new List<double>();
            var far = new List<double>();
            var directNear = new List<double>();
            var directFar = new List<double>();
            for (var j = 0; j < settings.ChainProbes; j++)
            {
                if ((j + rep) % 2 == 0)
                {
                    near.Add((await TurnAsync(rig.Through, ids[8], $"Probe {rep}.{j}")).Ms);
                    far.Add((await TurnAsync(rig.Through, ids[turns - 2], $"Probe {rep}.{j}")).Ms);
                }
                else
                {
                    far.Add((await TurnAsync(rig.Through, ids[turns - 2], $"Probe {rep}.{j}")).Ms);
                    near.Add((await TurnAsync(rig.Through, ids[8], $"Probe {rep}.{j}")).Ms);
                }
                directNear.Add(await Wire.PostAsync(rig.Direct, "v1/chat/completions", nearBody));
                directFar.Add(await Wire.PostAsync(rig.Direct, "v1/chat/completions", farBody));
            }
            var (n50, f50, dn50, df50) = (Stats.Percentile(near, 50), Stats.Percentile(far, 50), Stats.Percentile(directNear, 50), Stats.Percentile(directFar, 50));
            figures.Add("near p50", n50);
            figures.Add("far p50", f50);
            figures.Add("ratio", f50 / n50);
            figures.Add("direct near p50", dn50);
            figures.Add("direct far p50", df50);
            figures.Add("added near p50", n50 - dn50);
            figures.Add("added far p50", f50 - df50);
            figures.Add("added ratio", (f50 - df50) / (n50 - dn50));
            figures.Add("direct ratio", df50 / dn50);
            Console.WriteLine($"  chain probe rep {rep + 1}: turn 10 {n50:0.00} ms, turn {turns} {f50:0.00} ms, ratio {f50 / n50:0.00}; direct {dn50:0.00} / {df50:0.00} ms");
        }

        var breakdown = await ChainBreakdown.MeasureAsync(rig, ids[9], ids[turns - 1], settings.Quick ? 5 : 20, postgres?.Settings);
        return new ChainRun(backend, figures, bytesSmall, bytesLarge, payloadSmall, payloadLarge, buildSeconds, upstreamBodyLarge, warmup.ToString(),
            Stats.Median(buildLatency.Skip(5).Take(10).ToList()), Stats.Median(buildLatency.Skip(turns - 10).ToList()), breakdown);
    }


    /// <summary>
    /// Builds a chain, then runs deep turns only, for a profiler attached from outside (<c>--only profile-chain</c>); prints
    /// the p50 every 200 turns and reports nothing.
    /// </summary>
    public static async Task ProfileAsync(Settings settings)
    {
        await using var rig = await Rig.StartAsync(new Dictionary<string, string?> { ["API_SERVER_MAX_STORED_RESPONSES"] = "100000" });
        // BENCH_PROFILE_DEPTH picks the probed turn (default: the chain's last), e.g. 10 to compare a shallow turn.
        var ids = new List<string>();
        for (var t = 0; t < settings.ChainTurns - 1; t++)
            ids.Add((await TurnAsync(rig.Through, ids.Count == 0 ? null : ids[^1], $"Turn {t + 1}: tell me something new.")).Id);
        var depth = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PROFILE_DEPTH"), out var d) ? Math.Clamp(d, 2, ids.Count + 1) : ids.Count + 1;
        var last = ids[depth - 2];
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PROFILE_WINDOWS"), out var n) ? n : 10;
        for (var round = 0; round < rounds; round++)
        {
            var latencies = new List<double>();
            for (var i = 0; i < 200; i++)
                latencies.Add((await TurnAsync(rig.Through, last, $"Probe {round}.{i}")).Ms);
            Console.WriteLine($"  deep turn p50 {Stats.Percentile(latencies, 50):0.000} ms");
        }
    }

    private static async Task<(string Id, double Ms)> TurnAsync(HttpClient client, string? previous, string input)
    {
        var body = previous is null
            ? JsonSerializer.Serialize(new Dictionary<string, object> { ["model"] = "fake-model", ["input"] = input })
            : JsonSerializer.Serialize(new Dictionary<string, object> { ["model"] = "fake-model", ["input"] = input, ["previous_response_id"] = previous });
        var start = Stopwatch.GetTimestamp();
        using var response = await client.PostAsync(Path, Wire.Json(body));
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{Path} answered {(int)response.StatusCode}: {System.Text.Encoding.UTF8.GetString(bytes)}");
        using var doc = JsonDocument.Parse(bytes);
        return (doc.RootElement.GetProperty("id").GetString()!, ms);
    }

    /// <summary>The exact upstream body the gateway sends for a turn on top of <paramref name="parent"/>.</summary>
    private static async Task<string> ProbeBodyAsync(Rig rig, string parent)
    {
        await TurnAsync(rig.Through, parent, "Probe body.");
        return rig.Upstream.Requests[^1].Body.GetRawText();
    }

    private static (long Bytes, long Payload) DatabaseBytes(string dataDir)
    {
        var path = System.IO.Path.Combine(dataDir, "responses.db");
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using (var checkpoint = connection.CreateCommand())
        {
            checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
            checkpoint.ExecuteNonQuery();
        }
        using var size = connection.CreateCommand();
        size.CommandText = """
            SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()),
                   (SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM response_messages)
                 + (SELECT COALESCE(SUM(LENGTH(CAST(response_json AS BLOB))), 0) FROM responses);
            """;
        using var reader = size.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
