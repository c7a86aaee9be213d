using System.Net;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Idempotency;

public sealed class IdempotencyTests : IAsyncLifetime
{
    private FakeUpstreamServer _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstreamServer.StartAsync();

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Task<TestServer> StartAsync(Dictionary<string, string?>? extra = null, TimeProvider? time = null) =>
        IdempotencyKit.StartAsync(_upstream, extra, time);

    private static HttpRequestMessage Post(string path, string body, string? key) => IdempotencyKit.Post(path, body, key);

    private const string Chat = """{"model":"agent","messages":[{"role":"user","content":"hello"}]}""";

    [Fact]
    public async Task FiftyConcurrentDuplicates_RunTheAgentOnce_AndAllGetIdenticalBodies()
    {
        var release = new TaskCompletionSource();
        _upstream.Enqueue(FakeResponse.Stream().WaitFor(release.Task).Content("only once", chunks: 2).Finish("stop").Usage(5, 2));
        await using var server = await StartAsync();

        var requests = Enumerable.Range(0, 50).Select(_ => server.Client.SendAsync(Post("/v1/chat/completions", Chat, "same-key"))).ToList();
        await _upstream.WaitForRequestAsync(1);
        release.SetResult();
        var responses = await Task.WhenAll(requests);

        Assert.Equal(1, _upstream.CallCount);
        var bodies = await Task.WhenAll(responses.Select(r => r.Content.ReadAsStringAsync()));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Single(bodies.Distinct());
        Assert.Contains("only once", bodies[0]);
        Assert.Equal(49, responses.Count(r => r.Headers.TryGetValues("Idempotent-Replayed", out var v) && v.Single() == "true"));
    }

    [Fact]
    public async Task Replay_ReturnsSameStatusBodyAndIds_WithReplayedHeader_AndNoUpstreamCall()
    {
        await using var server = await StartAsync();

        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k1"));
        using var second = await server.Client.SendAsync(Post("/v1/chat/completions", Chat.Replace("\"model\":\"agent\",", "") + "", "k1-other"));
        using var replay = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k1"));

        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(), await replay.Content.ReadAsStringAsync());
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.False(first.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(first.Headers.GetValues("X-Session-Id").Single(), replay.Headers.GetValues("X-Session-Id").Single());
        Assert.Equal(2, _upstream.CallCount);
    }

    [Fact]
    public async Task SameKeyDifferentBody_Answers422()
    {
        await using var server = await StartAsync();
        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k2"));

        using var reused = await server.Client.SendAsync(Post("/v1/chat/completions", Chat.Replace("hello", "goodbye"), "k2"));

        await reused.AssertErrorAsync(422, code: "idempotency_key_reused", param: "Idempotency-Key");
        Assert.Equal(1, _upstream.CallCount);
    }

    [Fact]
    public async Task Fingerprint_IgnoresKeyOrderAndWhitespace()
    {
        await using var server = await StartAsync();
        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k3"));

        using var reordered = await server.Client.SendAsync(Post("/v1/chat/completions",
            """{ "messages" : [ { "content":"hello", "role":"user" } ],  "model":"agent" }""", "k3"));

        Assert.Equal(HttpStatusCode.OK, reordered.StatusCode);
        Assert.Equal("true", reordered.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1, _upstream.CallCount);
    }

    [Fact]
    public async Task ServerErrorOutcome_IsNotCached_SoARetryRuns()
    {
        _upstream.Enqueue(FakeResponse.Error(500, "boom"));
        await using var server = await StartAsync();

        using var failed = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k4"));
        using var retried = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k4"));

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.False(retried.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(2, _upstream.CallCount);
    }

    [Fact]
    public async Task RateLimitedOutcome_IsNotKept_SoARetryAfterRetryAfterRuns()
    {
        _upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "1"));
        await using var server = await StartAsync();

        using var limited = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k429"));
        using var retried = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k429"));

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.False(retried.Headers.Contains("Idempotent-Replayed"));
    }

    [Fact]
    public async Task StreamThatFailedInBand_IsNotKept()
    {
        var delivered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Enqueue(FakeResponse.Stream().Content("partial").WaitFor(delivered.Task).Abort());
        await using var server = await StartAsync();
        const string body = """{"messages":[{"role":"user","content":"stream it"}],"stream":true}""";

        using var failed = await server.Client.SendAsync(Post("/v1/chat/completions", body, "kstream"), HttpCompletionOption.ResponseHeadersRead);
        var wire = new ChatCompletions.SseWire(await failed.Content.ReadAsStreamAsync());
        await wire.ReadUntilAsync("partial");
        delivered.SetResult(); // the upstream breaks after the 200 went out: the failure is in-band
        await wire.ReadToEndAsync();
        using var retried = await server.Client.SendAsync(Post("/v1/chat/completions", body, "kstream"));

        Assert.Equal(HttpStatusCode.OK, failed.StatusCode);
        Assert.Contains("\"error\"", wire.Text);
        Assert.Contains("data: [DONE]", await retried.Content.ReadAsStringAsync());
        Assert.False(retried.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(2, _upstream.CallCount);
    }

    [Fact]
    public async Task UnpairedSurrogate_Answers400_WithOrWithoutKey()
    {
        await using var server = await StartAsync();
        const string body = """{"messages":[{"role":"user","content":"hi \ud83d"}]}""";

        using var plain = await server.Client.SendAsync(Post("/v1/chat/completions", body, null));
        using var keyed = await server.Client.SendAsync(Post("/v1/chat/completions", body, "ksur"));

        await plain.AssertErrorAsync(400, code: "invalid_json");
        await keyed.AssertErrorAsync(400, code: "invalid_json");
    }

    [Fact]
    public async Task ClientErrorOutcome_IsReplayed()
    {
        await using var server = await StartAsync();
        const string bad = """{"messages":[{"role":"user","content":"x"}],"n":2}""";

        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", bad, "k5"));
        using var replay = await server.Client.SendAsync(Post("/v1/chat/completions", bad, "k5"));

        await first.AssertErrorAsync(400, param: "n");
        await replay.AssertErrorAsync(400, param: "n");
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
    }

    [Fact]
    public async Task ExpiredKey_RunsAgain()
    {
        var time = new ShiftableTimeProvider();
        await using var server = await StartAsync(new() { ["API_SERVER_IDEMPOTENCY_TTL_SECONDS"] = "5" }, time);
        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k6"));
        // The answer reaches the client a moment before the server records it as finished; the TTL counts from there.
        var store = server.Service<ApiServer.Idempotency.IIdempotencyStore>();
        await Eventually.TrueAsync(async () => await store.CountFinishedAsync(CancellationToken.None) > 0, "the first request to be recorded as finished");
        Assert.Equal(1, await store.CountFinishedAsync(CancellationToken.None));

        time.Advance(TimeSpan.FromSeconds(6));
        using var later = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "k6"));

        Assert.Equal(HttpStatusCode.OK, later.StatusCode);
        Assert.False(later.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(2, _upstream.CallCount);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("del\u007fkey")]
    public async Task InvalidKey_Answers400(string key)
    {
        await using var server = await StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = TestJson.Body(Chat) };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", key);

        using var response = await server.Client.SendAsync(request);

        await response.AssertErrorAsync(400, code: "invalid_idempotency_key", param: "Idempotency-Key");
        Assert.Equal(0, _upstream.CallCount);
    }

    [Fact]
    public async Task OverlongKey_Answers400()
    {
        await using var server = await StartAsync();

        using var response = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, new string('k', 256)));

        await response.AssertErrorAsync(400, code: "invalid_idempotency_key");
    }

    [Fact]
    public async Task SameKeyOnAnotherRoute_IsIndependent()
    {
        await using var server = await StartAsync();
        using var chat = await server.Client.SendAsync(Post("/v1/chat/completions", Chat, "shared"));

        using var response = await server.Client.SendAsync(Post("/v1/responses", """{"input":"hello"}""", "shared"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("Idempotent-Replayed"));
    }

    [Fact]
    public async Task StreamingReplay_IsByteIdentical_AndALiveDuplicateFollowsTheStream()
    {
        var release = new TaskCompletionSource();
        _upstream.Enqueue(FakeResponse.Stream().Content("part one ", chunks: 2).WaitFor(release.Task).Content("part two", chunks: 2).Finish("stop").Usage(3, 4));
        await using var server = await StartAsync();
        const string body = """{"messages":[{"role":"user","content":"stream it"}],"stream":true,"stream_options":{"include_usage":true}}""";

        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", body, "s1"), HttpCompletionOption.ResponseHeadersRead);
        using var follower = await server.Client.SendAsync(Post("/v1/chat/completions", body, "s1"), HttpCompletionOption.ResponseHeadersRead);
        var firstBody = first.Content.ReadAsStringAsync();
        var followerBody = follower.Content.ReadAsStringAsync();
        release.SetResult();
        var original = WithoutKeepalives(await firstBody);
        using var replay = await server.Client.SendAsync(Post("/v1/chat/completions", body, "s1"));

        Assert.Equal(1, _upstream.CallCount);
        Assert.Contains("data: [DONE]", original);
        Assert.Equal(original, WithoutKeepalives(await followerBody));
        Assert.Equal(original, WithoutKeepalives(await replay.Content.ReadAsStringAsync()));
        Assert.Equal("text/event-stream", replay.Content.Headers.ContentType?.MediaType);
        Assert.Equal("true", follower.Headers.GetValues("Idempotent-Replayed").Single());
    }

    [Fact]
    public async Task DuplicateRun_ReturnsTheSameRunId_AndStartsOneRun()
    {
        await using var server = await StartAsync();
        const string body = """{"input":"run once"}""";

        using var first = await server.Client.SendAsync(Post("/v1/runs", body, "r1"));
        using var second = await server.Client.SendAsync(Post("/v1/runs", body, "r1"));

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        var runId = (await first.ReadJsonAsync()).GetProperty("run_id").GetString();
        Assert.Equal(runId, (await second.ReadJsonAsync()).GetProperty("run_id").GetString());
        Assert.Equal("true", second.Headers.GetValues("Idempotent-Replayed").Single());
        using var events = await server.Client.GetAsync($"/v1/runs/{runId}/events");
        Assert.Contains("run.completed", await events.Content.ReadAsStringAsync());
        Assert.Equal(1, _upstream.CallCount);
    }

    private static string WithoutKeepalives(string sse) => sse.Replace(": keepalive\n\n", "");
}
