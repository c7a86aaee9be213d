using System.Net;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Idempotency;

/// <summary>Issue 19: an empty body is a 400, not a 500; route spelling and Authorization spelling don't split a key's scope.</summary>
public sealed class IdempotencyScopeTests : IAsyncLifetime
{
    private FakeUpstreamServer _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstreamServer.StartAsync();

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Task<TestServer> StartAsync(string? key = null) => IdempotencyKit.StartAsync(_upstream, new() { ["API_SERVER_KEY"] = key ?? "" });

    private static HttpRequestMessage Post(string path, string body, string key, string? authorization = null) =>
        IdempotencyKit.Post(path, body, key, authorization);

    [Theory]
    [InlineData("/v1/chat/completions", "")]
    [InlineData("/v1/responses", "")]
    [InlineData("/v1/runs", "")]
    [InlineData("/v1/chat/completions", "not json at all")]
    [InlineData("/v1/responses", "{\"input\":")]
    [InlineData("/v1/runs", "\u00ff\u00fe")]
    public async Task A_keyed_request_with_an_empty_or_non_json_body_answers_400_and_replays_it(string route, string body)
    {
        await using var server = await StartAsync();

        using var first = await server.Client.SendAsync(Post(route, body, "bad-body"));
        using var again = await server.Client.SendAsync(Post(route, body, "bad-body"));

        await first.AssertErrorAsync(400);
        await again.AssertErrorAsync(400);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(0, _upstream.CallCount);
    }

    [Theory]
    [InlineData("/v1/Responses")]
    [InlineData("/v1/responses/")]
    [InlineData("/V1/RESPONSES/")]
    public async Task Spellings_of_the_route_share_one_scope(string spelling)
    {
        await using var server = await StartAsync();
        const string body = """{"input":"hello"}""";

        using var first = await server.Client.SendAsync(Post("/v1/responses", body, "route-key"));
        using var replay = await server.Client.SendAsync(Post(spelling, body, "route-key"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(await first.Content.ReadAsStringAsync(), await replay.Content.ReadAsStringAsync());
        Assert.Equal(1, _upstream.CallCount);
    }

    [Theory]
    [InlineData("bearer  {0}")]
    [InlineData("BEARER {0}   ")]
    public async Task Spellings_of_the_same_credential_share_one_scope(string spelling)
    {
        await using var server = await StartAsync(TestServer.Key);
        const string body = """{"messages":[{"role":"user","content":"hello"}]}""";

        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", body, "auth-key", $"Bearer {TestServer.Key}"));
        using var replay = await server.Client.SendAsync(Post("/v1/chat/completions", body, "auth-key", string.Format(spelling, TestServer.Key)));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1, _upstream.CallCount);
    }

    [Fact]
    public async Task Without_a_configured_key_every_caller_is_one_anonymous_principal()
    {
        await using var server = await StartAsync();
        const string body = """{"messages":[{"role":"user","content":"hello"}]}""";

        using var first = await server.Client.SendAsync(Post("/v1/chat/completions", body, "anon-key"));
        using var replay = await server.Client.SendAsync(Post("/v1/chat/completions", body, "anon-key", "Bearer whatever-the-client-sends"));

        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1, _upstream.CallCount);
    }
}
