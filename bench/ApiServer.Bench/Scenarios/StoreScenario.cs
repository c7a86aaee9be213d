using System.Diagnostics;
using ApiServer.Agent;
using ApiServer.Bench.Infrastructure;
using ApiServer.Data;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using ApiServer.Data.Postgres;
using Microsoft.Data.Sqlite;
using Npgsql;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 6: stored responses per second with 50 concurrent writers, straight into the response store (SQLite on a real
/// file in WAL mode, and PostgreSQL when APISERVER_BENCH_POSTGRES names a server), and the same for one chat turn in the
/// session store (every chat completion writes one). Any database exception (SQLITE_BUSY "database is locked", a PostgreSQL
/// deadlock or serialization failure) counts as a lock error.
/// </summary>
public static class StoreScenario
{
    // Numbers every write of the run, so a warm-up round and the measured round after it never reuse an id.
    private static long s_next;

    private static readonly string[] Names = ["responses", "responses p50", "responses p99", "sessions", "sessions p50", "sessions sequential", "sessions sequential p50"];

    public static async Task RunAsync(Settings settings, Report report)
    {
        var backends = BenchPostgres.Backends;
        var figures = backends.ToDictionary(b => b, _ => new FigureSet());
        var errors = backends.ToDictionary(b => b, _ => (Responses: 0L, Sessions: 0L));
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            // Backends alternate within each repetition, so drift on the shared machine reaches both alike.
            foreach (var backend in rep % 2 == 0 ? backends : backends.Reverse())
            {
                var (responses, responseFailed, responseLatency) = await ResponsesAsync(backend, settings.StoreWriters, settings.StoreWindow);
                var (sessions, sessionFailed, sessionLatency) = await SessionsAsync(backend, settings.StoreWriters, settings.StoreWindow);
                var (sequential, _, sequentialLatency) = await SessionsAsync(backend, 1, settings.StoreWindow);
                errors[backend] = (errors[backend].Responses + responseFailed, errors[backend].Sessions + sessionFailed);
                var f = figures[backend];
                f.Add("responses", responses);
                f.Add("responses p50", Stats.Percentile(responseLatency, 50));
                f.Add("responses p99", Stats.Percentile(responseLatency, 99));
                f.Add("sessions", sessions);
                f.Add("sessions p50", Stats.Percentile(sessionLatency, 50));
                f.Add("sessions sequential", sequential);
                f.Add("sessions sequential p50", Stats.Percentile(sequentialLatency, 50));
                Console.WriteLine($"  store rep {rep + 1} ({backend}): responses {responses:0}/s, session turns {sessions:0}/s (sequential {sequential:0}/s, p50 {Stats.Percentile(sequentialLatency, 50):0.000} ms)");
            }
        }

        foreach (var backend in backends)
        {
            var rate = figures[backend]["responses"];
            var failed = errors[backend].Responses;
            var on = backend == BenchPostgres.Sqlite ? "" : $" on {backend}";
            report.Row($"6. Store throughput{on}, {settings.StoreWriters} concurrent writers", $"{rate.Short(" responses/s", "0")} (min {Report.N(rate.Min, "0")}, max {Report.N(rate.Max, "0")}); {failed} lock errors", "report; 0 lock errors", failed == 0);
        }
        var labels = new[]
        {
            $"**stored responses/s, {settings.StoreWriters} writers**", $"PutAsync latency p50 ({settings.StoreWriters} writers)", $"PutAsync latency p99 ({settings.StoreWriters} writers)",
            $"session turns/s, {settings.StoreWriters} writers", $"session AppendTurnAsync p50 ({settings.StoreWriters} writers)", "session turns/s, 1 writer", "session AppendTurnAsync p50 (1 writer)",
        };
        var units = new[] { "", " ms", " ms", "", " ms", "", " ms" };
        report.Section("6. Store throughput",
            $"""
            {settings.StoreWriters} writers call the response store's `PutAsync` in a loop for {settings.StoreWindow.TotalSeconds:0.#} s per repetition, on a fresh database each time:
            SQLite's `responses.db` in a temp dir (WAL, one writer connection; writes that queue behind a running transaction commit together,
            up to 64){(backends.Count > 1 ? ", and a new PostgreSQL database on the server in `APISERVER_BENCH_POSTGRES` (Npgsql's pool, one transaction per put plus one for the capacity check; row locks instead of one writer)" : "")}.
            Each response is a 2-turn chain link (user input + assistant answer, ~1 KB of response JSON), half of them chained to an earlier one.
            The session store row is the per-request write every chat completion makes (`AppendTurnAsync`: session row + 2 messages);
            its sequential rate bounds sequential chat latency, its concurrent rate bounds chat throughput. The backends alternate within
            each repetition. Lock errors (any database exception), responses / sessions: {string.Join("; ", backends.Select(b => $"{b} {errors[b].Responses} / {errors[b].Sessions}"))}.
            {(backends.Count > 1 ? "" : BenchPostgres.NotMeasured)}

            {Report.CompareTable(backends, Names.Select((name, i) => (labels[i], backends.Select(b => figures[b][name]).ToList(), units[i])), "0.000")}
            """);
    }

    private static async Task<(double PerSecond, long Errors, List<double> Latencies)> ResponsesAsync(string backend, int writers, TimeSpan window)
    {
        var json = "{\"id\":\"resp\",\"object\":\"response\",\"output\":[" + string.Join(",", Enumerable.Repeat("{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"hello there\"}]}", 10)) + "]}";
        var ids = new System.Collections.Concurrent.ConcurrentQueue<string>();
        return await WithStoreAsync<IResponseStore>(backend, "store",
            dir => new SqliteResponseStore(dir, NullLogger<SqliteResponseStore>.Instance, maxStoredResponses: 1_000_000),
            database => new PostgresResponseStore(database, NullLogger.Instance, maxStoredResponses: 1_000_000),
            store => async n =>
            {
                ids.TryDequeue(out var parent);
                var id = $"resp_{n:x16}";
                await store.PutAsync(new StoredResponse
                {
                    Id = id,
                    PreviousResponseId = parent,
                    SessionId = "sess_bench",
                    ResponseJson = json,
                    NewMessages = [new StoredMessage($"msg_{n}_in", ChatMessage.User($"question {n}")), new StoredMessage($"msg_{n}_out", ChatMessage.Assistant($"answer {n}"))],
                    InputMessageCount = 1,
                    CreatedAt = DateTimeOffset.UtcNow,
                }, CancellationToken.None);
                if (n % 2 == 0)
                    ids.Enqueue(id);
            }, writers, window);
    }

    private static Task<(double PerSecond, long Errors, List<double> Latencies)> SessionsAsync(string backend, int writers, TimeSpan window) =>
        WithStoreAsync<ISessionStore>(backend, "sessions",
            dir => new SqliteSessionStore(SqliteDatabase.Open(dir, "sessions.db", SqliteSessionStore.Migrations, NullLogger.Instance), TimeProvider.System),
            database => new PostgresSessionStore(database, TimeProvider.System),
            store => n => store.AppendTurnAsync(
                new SessionTurn($"sess_{n}", "fake-model", [], [ChatMessage.User($"question {n}")]),
                [ChatMessage.Assistant($"answer {n}")], new TokenUsage(10, 5), CancellationToken.None), writers, window);

    /// <summary>
    /// <paramref name="writers"/> run <paramref name="write"/> on a store of <typeparamref name="T"/> on a fresh database of
    /// <paramref name="backend"/>, removed afterwards. A short unmeasured round first fills PostgreSQL's connection pool
    /// (each new connection is a server process and a SCRAM handshake), as a running server's pool is full.
    /// </summary>
    private static async Task<(double PerSecond, long Errors, List<double> Latencies)> WithStoreAsync<T>(string backend, string purpose,
        Func<string, T> sqlite, Func<PostgresDatabase, T> postgres, Func<T, Func<long, Task>> write, int writers, TimeSpan window)
    {
        async Task<(double, long, List<double>)> run(T store)
        {
            await LoopAsync(writers, window / 4, write(store), quiet: true);
            return await LoopAsync(writers, window, write(store));
        }

        if (backend == BenchPostgres.Postgres)
        {
            await using var server = await BenchPostgres.CreateDatabaseAsync(purpose);
            await using var database = await server.OpenStoresAsync();
            return await run(postgres(database));
        }
        var dir = TempDir.Create(purpose);
        try
        {
            var store = sqlite(dir);
            try
            {
                return await run(store);
            }
            finally
            {
                if (store is IAsyncDisposable disposable)
                    await disposable.DisposeAsync();
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            TempDir.Delete(dir);
        }
    }

    private static async Task<(double PerSecond, long Errors, List<double> Latencies)> LoopAsync(int writers, TimeSpan window, Func<long, Task> write, bool quiet = false)
    {
        long done = 0, errors = 0;
        var latencies = new List<double>[writers];
        var counters = ProcessCounters.Start();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = [];
            while (clock.Elapsed < window)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await write(Interlocked.Increment(ref s_next));
                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    Interlocked.Increment(ref done);
                }
                catch (Exception ex) when (ex is SqliteException or NpgsqlException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        })));
        var elapsed = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).ToList();
        if (!quiet)
            Console.WriteLine($"    {writers} writers: {done / elapsed:0}/s, p50 {Stats.Percentile(all, 50):0.000} ms, p99 {Stats.Percentile(all, 99):0.000} ms, max {all.DefaultIfEmpty().Max():0.0} ms; {counters.Stop().PerRequest(done)}");
        return (done / elapsed, errors, all);
    }
}
