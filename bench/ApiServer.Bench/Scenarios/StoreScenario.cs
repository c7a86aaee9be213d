using System.Diagnostics;
using ApiServer.Agent;
using ApiServer.Bench.Infrastructure;
using ApiServer.Data;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 6: stored responses per second with 50 concurrent writers, straight into SqliteResponseStore on a real file
/// (WAL), and the same for one chat turn in the session store (every chat completion writes one). Any SqliteException
/// (SQLITE_BUSY "database is locked" included) counts as a lock error.
/// </summary>
public static class StoreScenario
{
    public static async Task RunAsync(Settings settings, Report report)
    {
        var figures = new FigureSet();
        long responseErrors = 0, sessionErrors = 0;
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            var (responses, responseFailed, responseLatency) = await ResponsesAsync(settings.StoreWriters, settings.StoreWindow);
            var (sessions, sessionFailed, sessionLatency) = await SessionsAsync(settings.StoreWriters, settings.StoreWindow);
            var (sequential, _, sequentialLatency) = await SessionsAsync(1, settings.StoreWindow);
            responseErrors += responseFailed;
            sessionErrors += sessionFailed;
            figures.Add("responses", responses);
            figures.Add("responses p50", Stats.Percentile(responseLatency, 50));
            figures.Add("responses p99", Stats.Percentile(responseLatency, 99));
            figures.Add("sessions", sessions);
            figures.Add("sessions p50", Stats.Percentile(sessionLatency, 50));
            figures.Add("sessions sequential", sequential);
            figures.Add("sessions sequential p50", Stats.Percentile(sequentialLatency, 50));
            Console.WriteLine($"  store rep {rep + 1}: responses {responses:0}/s, session turns {sessions:0}/s (sequential {sequential:0}/s, p50 {Stats.Percentile(sequentialLatency, 50):0.000} ms)");
        }

        var rate = figures["responses"];
        report.Row($"6. Store throughput, {settings.StoreWriters} concurrent writers", $"{rate.Short(" responses/s", "0")} (min {Report.N(rate.Min, "0")}, max {Report.N(rate.Max, "0")}); {responseErrors} lock errors", "report; 0 lock errors", responseErrors == 0);
        report.Section("6. Store throughput",
            $"""
            {settings.StoreWriters} writers call `SqliteResponseStore.PutAsync` in a loop for {settings.StoreWindow.TotalSeconds:0.#} s per repetition, on a fresh `responses.db` in a temp dir
            (WAL, one writer connection; writes that queue behind a running transaction commit together, up to 64). Each response is a 2-turn chain link (user input + assistant answer,
            ~1 KB of response JSON), half of them chained to an earlier one. Lock errors (any SqliteException): {responseErrors}.
            The session store row is the per-request write every chat completion makes (`AppendTurnAsync`: session row + 2 messages);
            its sequential rate bounds sequential chat latency, its concurrent rate bounds chat throughput. Session-store errors: {sessionErrors}.

            {Report.FigureTable([
                ("**stored responses/s, 50 writers**", rate, ""),
                ("PutAsync latency p50 (50 writers)", figures["responses p50"], " ms"),
                ("PutAsync latency p99 (50 writers)", figures["responses p99"], " ms"),
                ("session turns/s, 50 writers", figures["sessions"], ""),
                ("session AppendTurnAsync p50 (50 writers)", figures["sessions p50"], " ms"),
                ("session turns/s, 1 writer", figures["sessions sequential"], ""),
                ("session AppendTurnAsync p50 (1 writer)", figures["sessions sequential p50"], " ms"),
            ], "0.000")}
            """);
    }

    private static async Task<(double PerSecond, long Errors, List<double> Latencies)> ResponsesAsync(int writers, TimeSpan window)
    {
        var dir = TempDir.Create("store");
        try
        {
            var store = new SqliteResponseStore(dir, NullLogger<SqliteResponseStore>.Instance, maxStoredResponses: 1_000_000);
            await using (store)
            {
                var json = "{\"id\":\"resp\",\"object\":\"response\",\"output\":[" + string.Join(",", Enumerable.Repeat("{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"hello there\"}]}", 10)) + "]}";
                var ids = new System.Collections.Concurrent.ConcurrentQueue<string>();
                return await LoopAsync(writers, window, async n =>
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
                });
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            TempDir.Delete(dir);
        }
    }

    private static async Task<(double PerSecond, long Errors, List<double> Latencies)> SessionsAsync(int writers, TimeSpan window)
    {
        var dir = TempDir.Create("sessions");
        try
        {
            var database = SqliteDatabase.Open(dir, "sessions.db", SqliteSessionStore.Migrations, NullLogger.Instance);
            await using (database)
            {
                var store = new SqliteSessionStore(database, TimeProvider.System);
                return await LoopAsync(writers, window, n => store.AppendTurnAsync(
                    new SessionTurn($"sess_{n}", "fake-model", [], [ChatMessage.User($"question {n}")]),
                    [ChatMessage.Assistant($"answer {n}")], new TokenUsage(10, 5), CancellationToken.None));
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            TempDir.Delete(dir);
        }
    }

    private static async Task<(double PerSecond, long Errors, List<double> Latencies)> LoopAsync(int writers, TimeSpan window, Func<long, Task> write)
    {
        long done = 0, errors = 0, next = 0;
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
                    await write(Interlocked.Increment(ref next));
                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    Interlocked.Increment(ref done);
                }
                catch (SqliteException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        })));
        var elapsed = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).ToList();
        Console.WriteLine($"    {writers} writers: {done / elapsed:0}/s, p50 {Stats.Percentile(all, 50):0.000} ms, p99 {Stats.Percentile(all, 99):0.000} ms, max {all.DefaultIfEmpty().Max():0.0} ms; {counters.Stop().PerRequest(done)}");
        return (done / elapsed, errors, all);
    }
}
