using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ApiServer.Bench.Infrastructure;
using FakeUpstream;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 8 (issue 19, finding 1): stored responses with large inputs. N responses, each with ~900 KB of input in 15
/// parts, are created (store: true) on a server run as its own process, and its RSS is read before, at the peak, right after
/// and after an idle pause. Before the chain cache was bounded in bytes this took the server from 83 MB to 4.2 GB.
/// </summary>
public static class StoredResponsesMemoryScenario
{
    /// <summary>
    /// What the server may hold after the load (and after idle): ~90 MB of runtime, mapped assemblies and JIT code, ~30 MB of
    /// native memory, ~46 MB of live objects (the 32 MiB chain cache's ~22 MB of strings among them) and up to ~100 MB of dead
    /// or free large-object heap the GC keeps committed until its next full collection (measured 234-245 MB; docs/reliability.md).
    /// </summary>
    public const long CeilingBytes = 320L * 1024 * 1024;

    private const int Parts = 15;
    private const int PartChars = 60_000;
    private const int Concurrency = 4;

    public static async Task RunAsync(Settings settings, Report report)
    {
        var n = settings.Quick ? 60 : 600;
        var idle = settings.Quick ? TimeSpan.FromSeconds(2) : TimeSpan.FromSeconds(20);
        await using var upstream = await FakeUpstreamServer.StartAsync();
        for (var i = 0; i < n + 10; i++)
            upstream.Enqueue(FakeResponse.Text("ok", chunks: 1));
        await using var server = await ExternalServer.StartAsync(new Dictionary<string, string>
        {
            ["LLM_BASE_URL"] = upstream.BaseUrl,
            ["LLM_MODEL"] = "fake-model",
            ["LLM_MAX_RETRIES"] = "0",
        });
        using var client = Wire.Client(server.BaseAddress);

        var body = Body();
        await PostAsync(client, body); // warm the path
        await Task.Delay(TimeSpan.FromSeconds(1));
        var before = server.RssBytes();

        var peak = before;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, server.RssBytes());
                await Task.Delay(100);
            }
        });
        var clock = Stopwatch.StartNew();
        var next = 0;
        var errors = 0;
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= n)
            {
                if (!await PostAsync(client, body))
                    Interlocked.Increment(ref errors);
            }
        }));
        clock.Stop();
        await sampling.CancelAsync();
        await sampler;
        var after = server.RssBytes();
        await Task.Delay(idle);
        var afterIdle = server.RssBytes();
        server.SaveSmaps("memory-after-idle");
        // For experiments only: keeps the server up so dotnet-counters / dotnet-gcdump can attach to it (docs/reliability.md).
        if (int.TryParse(Environment.GetEnvironmentVariable("BENCH_MEMORY_HOLD_SECONDS"), out var hold) && hold > 0)
        {
            Console.WriteLine($"memory: server pid {server.Pid}, RSS {afterIdle / 1024 / 1024} MB; holding {hold} s");
            await Task.Delay(TimeSpan.FromSeconds(hold));
        }

        static string Mb(long bytes) => $"{bytes / 1024.0 / 1024:0} MB";
        var met = Math.Max(after, afterIdle) <= CeilingBytes && errors == 0;
        report.Row($"8. Stored responses: {n} × ~900 KB input in {Parts} parts, server RSS",
            $"before {Mb(before)}, peak {Mb(peak)}, after {Mb(after)}, after {idle.TotalSeconds:0} s idle {Mb(afterIdle)}; {errors} errors; {clock.Elapsed.TotalSeconds:0.0} s",
            $"after ≤ {Mb(CeilingBytes)}", met);
        report.Section("8. Memory under stored-response load",
            $"""
            {n} POST /v1/responses (store: true, {Concurrency} at a time), each with one user message of {Parts} input_text parts of
            {PartChars:N0} characters (~900 KB), answered "ok" by the fake upstream. The server is its own process; RSS is read
            from /proc. Before: {Mb(before)}. Peak while loading: {Mb(peak)}. Right after: {Mb(after)}. After {idle.TotalSeconds:0} s
            idle: {Mb(afterIdle)}. Ceiling: {Mb(CeilingBytes)} (API_SERVER_CHAIN_CACHE_MAX_BYTES is 32 MiB by default; the rest is
            the runtime and its mapped code, native memory, and large-object heap not yet collected; docs/reliability.md has the breakdown).
            """);
    }

    private static async Task<bool> PostAsync(HttpClient client, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync("v1/responses", content);
        await response.Content.ReadAsByteArrayAsync();
        return response.IsSuccessStatusCode;
    }

    private static byte[] Body()
    {
        var part = new string('x', PartChars);
        var parts = Enumerable.Range(0, Parts).Select(i => new { type = "input_text", text = $"{i} {part}" }).ToArray();
        return Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { model = "agent", store = true, input = new[] { new { role = "user", content = parts } } }));
    }
}
