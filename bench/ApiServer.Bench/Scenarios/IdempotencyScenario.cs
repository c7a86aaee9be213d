using System.Security.Cryptography;
using ApiServer.Bench.Infrastructure;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 7: 100 concurrent identical requests with one Idempotency-Key must reach the upstream exactly once; every
/// duplicate gets the same bytes. Counted on the fake upstream itself. Repeated with a fresh key per repetition, alternating
/// non-streaming and streaming requests.
/// </summary>
public static class IdempotencyScenario
{
    public static async Task RunAsync(Settings settings, Report report)
    {
        await using var rig = await Rig.StartAsync();
        var rows = new List<string>();
        var allExactlyOne = true;
        for (var rep = 0; rep < settings.Reps; rep++)
        {
            var stream = rep % 2 == 1;
            var key = $"bench-{Guid.NewGuid():N}";
            var body = Wire.ChatBody(stream, 700_000_000 + rep);
            var before = rig.Upstream.CallCount;
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var sends = Enumerable.Range(0, settings.IdempotencyDuplicates).Select(async _ =>
            {
                await start.Task;
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = Wire.Json(body) };
                request.Headers.Add("Idempotency-Key", key);
                using var response = await rig.Through.SendAsync(request);
                var bytes = await response.Content.ReadAsByteArrayAsync();
                var replayed = response.Headers.TryGetValues("Idempotent-Replayed", out var v) && v.Contains("true");
                return ((int)response.StatusCode, Convert.ToHexString(SHA256.HashData(bytes)), replayed);
            }).ToArray();
            start.SetResult();
            var results = await Task.WhenAll(sends);
            await Task.Delay(200); // let any straggling upstream call land before counting
            var calls = rig.Upstream.CallCount - before;
            var ok = results.Count(r => r.Item1 == 200);
            var distinct = results.Select(r => r.Item2).Distinct().Count();
            var replays = results.Count(r => r.replayed);
            allExactlyOne &= calls == 1 && ok == results.Length && distinct == 1;
            rows.Add($"| {rep + 1} | {(stream ? "stream:true" : "stream:false")} | {results.Length} | {calls} | {ok} | {replays} | {distinct} |");
            Console.WriteLine($"  idempotency rep {rep + 1}: {calls} upstream calls, {ok}/{results.Length} 200s, {replays} replayed, {distinct} distinct bodies");
        }

        report.Row($"7. Idempotency: {settings.IdempotencyDuplicates} concurrent duplicates, upstream calls", allExactlyOne ? $"exactly 1 in each of {settings.Reps} reps (all 200, identical bodies)" : "see details", "exactly 1", allExactlyOne);
        report.Section("7. Idempotency",
            $"""
            {settings.IdempotencyDuplicates} identical requests with one `Idempotency-Key` are released at once against the gateway; the fake upstream's own request
            counter is read before and after. A fresh key per repetition; odd repetitions stream.

            | Rep | Request | Duplicates | Upstream calls | 200 answers | Marked `Idempotent-Replayed` | Distinct response bodies |
            |---:|---|---:|---:|---:|---:|---:|
            {string.Join("\n", rows)}
            """);
    }
}
