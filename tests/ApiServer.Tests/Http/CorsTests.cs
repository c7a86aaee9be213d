using System.Net;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Http;

public sealed class CorsTests
{
    private const string Allowed = "https://chat.example.com";

    private static Task<TestServer> StartAsync(string origins) =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_CORS_ORIGINS"] = origins });

    private static HttpRequestMessage Request(HttpMethod method, string path, string? origin)
    {
        var request = new HttpRequestMessage(method, path);
        if (origin is not null)
            request.Headers.Add("Origin", origin);
        return request;
    }

    [Fact]
    public async Task ConfiguredOrigin_MatchesInTheFormBrowsersSend()
    {
        await using var server = await StartAsync("HTTPS://Chat.Example.com:443");

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/v1/models", Allowed));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Allowed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task AllowedOrigin_GetsEchoedOriginAndCorsHeaders()
    {
        await using var server = await StartAsync($"https://other.example, {Allowed}");

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/v1/models", Allowed));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Allowed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("Origin", response.Headers.Vary);
        Assert.Equal("600", response.Headers.GetValues("Access-Control-Max-Age").Single());
        Assert.Equal("GET, POST, DELETE, OPTIONS", response.Headers.GetValues("Access-Control-Allow-Methods").Single());
        var allowHeaders = response.Headers.GetValues("Access-Control-Allow-Headers").Single();
        foreach (var header in new[] { "Authorization", "Content-Type", "Idempotency-Key", "X-Session-Id", "Last-Event-ID" })
            Assert.Contains(header, allowHeaders);
        var expose = response.Headers.GetValues("Access-Control-Expose-Headers").Single();
        Assert.Contains("X-Session-Id", expose);
        Assert.Contains("Idempotent-Replayed", expose);
    }

    [Fact]
    public async Task Wildcard_AllowsAnyOriginWithStar()
    {
        await using var server = await StartAsync("*");

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/v1/models", "https://anything.example"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Theory]
    [InlineData("")]
    [InlineData(Allowed)]
    public async Task UnlistedOrigin_Answers403Envelope(string configured)
    {
        await using var server = await StartAsync(configured);

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/v1/models", "https://evil.example"));

        await response.AssertErrorAsync(403, code: "origin_not_allowed");
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task RequestWithoutOrigin_IsUnaffectedWhenNoOriginsConfigured()
    {
        await using var server = await StartAsync("");

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/v1/models", null));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Preflight_AllowedOrigin_Answers200WithoutAuth()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_CORS_ORIGINS"] = Allowed,
            ["API_SERVER_KEY"] = TestServer.Key,
        });
        using var request = Request(HttpMethod.Options, "/v1/chat/completions", Allowed);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "authorization, content-type");

        using var response = await server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Allowed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("POST", response.Headers.GetValues("Access-Control-Allow-Methods").Single());
    }

    [Fact]
    public async Task Preflight_UnlistedOrigin_Answers403()
    {
        await using var server = await StartAsync(Allowed);
        using var request = Request(HttpMethod.Options, "/v1/chat/completions", "https://evil.example");
        request.Headers.Add("Access-Control-Request-Method", "POST");

        using var response = await server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task AllowedOrigin_ErrorResponsesKeepCorsHeaders()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_CORS_ORIGINS"] = Allowed,
            ["API_SERVER_KEY"] = TestServer.Key,
        });

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/v1/models", Allowed));

        await response.AssertErrorAsync(401);
        Assert.Equal(Allowed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }
}
