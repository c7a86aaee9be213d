using System.Net;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Http;

public sealed class AuthTests
{
    private static readonly string[] OpenRoutes = ["/health", "/v1/health", "/health/detailed", "/openapi/v1.json"];

    private static IEnumerable<(string Method, string Path)> AllRoutes(TestServer server) => Access.AccessKit.AllRoutes(server);

    [Fact]
    public async Task EveryV1Route_WithKeyConfiguredAndNoCredentials_Answers401Envelope()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        var routes = AllRoutes(server).ToList();
        Assert.Contains(routes, r => r.Path == "/v1/models");

        foreach (var (method, path) in routes)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST")
                request.Content = TestJson.Body("{}");
            using var response = await server.Client.SendAsync(request);
            var protectedRoute = (path.StartsWith("/v1/") || path.StartsWith("/api/") || path == "/metrics") && path != "/v1/health";
            if (protectedRoute)
            {
                var error = await response.AssertErrorAsync(401, code: "invalid_api_key");
                Assert.Equal("Invalid API key", error.GetProperty("message").GetString());
                Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            }
            else
            {
                Assert.True(response.StatusCode != HttpStatusCode.Unauthorized, $"{method} {path} should be open");
            }
        }
    }

    [Theory]
    [InlineData("wrong-key-0123456789abcdef")]
    [InlineData("test-key-0123456789abcdeX")]
    [InlineData("")]
    public async Task ProtectedRoute_WithWrongKey_Answers401(string key)
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var client = server.AuthorizedClient(key.Length == 0 ? " " : key);

        using var response = await client.GetAsync("/v1/models");

        await response.AssertErrorAsync(401, code: "invalid_api_key");
    }

    [Fact]
    public async Task ProtectedRoute_WithBasicScheme_Answers401()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.TryAddWithoutValidation("Authorization", "Basic " + TestServer.Key);

        using var response = await server.Client.SendAsync(request);

        await response.AssertErrorAsync(401, code: "invalid_api_key");
    }

    [Fact]
    public async Task EveryRoute_WithCorrectKey_IsNeverRejectedForAuth()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var client = server.AuthorizedClient();

        foreach (var (method, path) in AllRoutes(server))
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST")
                request.Content = TestJson.Body("{}");
            using var response = await client.SendAsync(request);
            Assert.True(response.StatusCode != HttpStatusCode.Unauthorized, $"{method} {path} rejected a correct key");
        }
    }

    [Fact]
    public async Task EveryRoute_WithoutKeyConfigured_IsOpen()
    {
        await using var server = await TestServer.StartAsync();

        foreach (var (method, path) in AllRoutes(server))
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST")
                request.Content = TestJson.Body("{}");
            using var response = await server.Client.SendAsync(request);
            Assert.True(response.StatusCode != HttpStatusCode.Unauthorized, $"{method} {path} demanded a key");
        }
    }

    [Fact]
    public async Task OpenRoutes_WithKeyConfigured_StayOpen()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });

        foreach (var path in OpenRoutes.Append("/swagger/index.html"))
        {
            using var response = await server.Client.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode}");
        }
    }
}
