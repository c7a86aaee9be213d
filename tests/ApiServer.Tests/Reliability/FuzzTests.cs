using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Xunit.Abstractions;

namespace ApiServer.Tests.Reliability;

/// <summary>
/// A bounded fuzz run against the real server: no request may get a 5xx, and every 4xx must be the OpenAI error envelope with
/// a message. API_SERVER_FUZZ_REQUESTS raises the count, API_SERVER_FUZZ_SEED picks another sequence (see docs/reliability.md).
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int DefaultRequests = 3000;
    private const int DefaultSeed = 19;
    private const int Parallelism = 8;

    private FakeUpstreamServer _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstreamServer.StartAsync(new FakeUpstreamOptions { MaxRecordedRequests = 16 });

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task Fuzzed_requests_never_get_a_5xx_and_every_4xx_is_an_error_envelope(string backend)
    {
        var count = Setting("API_SERVER_FUZZ_REQUESTS", DefaultRequests);
        var seed = Setting("API_SERVER_FUZZ_SEED", DefaultSeed);
        // On PostgreSQL too: text it cannot store (NUL) must be refused like on SQLite, never reach the database as a 500.
        await using var database = await TestDatabase.ForAsync(backend);
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["LLM_BASE_URL"] = _upstream.BaseUrl,
            ["LLM_MODEL"] = "fake",
            ["LLM_MAX_RETRIES"] = "0",
            ["API_SERVER_DATABASE_URL"] = database?.Url(),
        });
        var generator = new FuzzRequests(seed);
        await AddKnownIdsAsync(server, generator);

        var failures = new ConcurrentQueue<string>();
        var statuses = new ConcurrentDictionary<int, int>();
        var requests = Channel.CreateBounded<(int Index, HttpRequestMessage Request)>(Parallelism * 2);
        var senders = Enumerable.Range(0, Parallelism).Select(_ => Task.Run(async () =>
        {
            await foreach (var (index, request) in requests.Reader.ReadAllAsync())
            {
                using (request)
                {
                    // Anything unexpected is reported, never left to stop a sender (the producer would wait for it forever).
                    var failure = await CheckAsync(server.Client, request, statuses).ContinueWith(t => t.IsFaulted ? $"test error: {t.Exception!.InnerException}" : t.Result);
                    if (failure is not null)
                        failures.Enqueue($"#{index} (seed {seed}) {request.Method} {request.RequestUri}: {failure}");
                }
            }
        })).ToList();
        // One producer in index order, so request #i is the same on every run with the same seed.
        for (var i = 0; i < count; i++)
            await requests.Writer.WriteAsync((i, generator.Next()));
        requests.Writer.Complete();
        await Task.WhenAll(senders);

        output.WriteLine($"{count} requests (seed {seed}): " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        Assert.True(failures.IsEmpty, $"{failures.Count} of {count} fuzzed requests failed:\n{string.Join('\n', failures.Take(20))}");
        // The run means something only if requests got past parsing as well as being refused for many reasons.
        Assert.True(statuses.Where(s => s.Key is >= 200 and < 300).Sum(s => s.Value) > count / 20, "Too few fuzzed requests succeeded.");
        Assert.True(statuses.Count(s => s.Key is >= 400 and < 500) >= 5, "Too few kinds of refusal.");
    }

    private static async Task<string?> CheckAsync(HttpClient client, HttpRequestMessage request, ConcurrentDictionary<int, int> statuses)
    {
        var requestBody = request.Content is null ? "" : System.Text.Encoding.UTF8.GetString(await request.Content.ReadAsByteArrayAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var body = System.Text.Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync(timeout.Token));
            var status = (int)response.StatusCode;
            statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
            if (status >= 500)
                return $"{status} {Shorten(body)} for body {Shorten(requestBody)}";
            if (status >= 400 && !IsErrorEnvelope(body))
                return $"{status} without the error envelope: {Shorten(body)} for body {Shorten(requestBody)}";
            return null;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return $"no complete answer within 30 s for body {Shorten(requestBody)}";
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            return $"connection failed ({ex.Message}) for body {Shorten(requestBody)}";
        }
    }

    private static bool IsErrorEnvelope(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.TryGetProperty("error", out var error)
                && error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String && message.GetString()!.Length > 0
                && error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A stored response and a finished run, so reads and deletes also reach rows that exist.</summary>
    private static async Task AddKnownIdsAsync(TestServer server, FuzzRequests generator)
    {
        using var response = await server.Client.PostAsync("/v1/responses", TestJson.Body("""{"input":"seed"}"""));
        generator.KnownIds.Add((await response.ReadJsonAsync()).GetProperty("id").GetString()!);
        using var run = await server.Client.PostAsync("/v1/runs", TestJson.Body("""{"input":"seed"}"""));
        var runId = (await run.ReadJsonAsync()).GetProperty("run_id").GetString()!;
        using var events = await server.Client.GetAsync($"/v1/runs/{runId}/events"); // ends with the run
        generator.KnownIds.Add(runId);
    }

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + $"… ({text.Length} chars)";
}
