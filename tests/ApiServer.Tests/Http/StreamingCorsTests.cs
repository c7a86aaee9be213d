using System.Net;
using System.Text;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Http;

/// <summary>A browser reading a stream needs the CORS headers and the exposed X-Session-Id on the SSE response itself.</summary>
public sealed class StreamingCorsTests
{
    private const string Origin = "https://chat.example.com";

    [Fact]
    public async Task StreamingChat_FromAllowedOrigin_CarriesCorsHeadersAndSessionId()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_CORS_ORIGINS"] = Origin });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = TestJson.Body("""{"stream":true,"messages":[{"role":"user","content":"hi"}]}"""),
        };
        request.Headers.Add("Origin", Origin);

        using var response = await server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Origin, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("X-Session-Id", response.Headers.GetValues("Access-Control-Expose-Headers").Single());
        Assert.StartsWith("sess_", response.Headers.GetValues("X-Session-Id").Single());
        Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StreamingChat_ErrorBeforeHeaders_KeepsCorsHeaders()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_CORS_ORIGINS"] = Origin });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"stream":true,"messages":[]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Origin", Origin);

        using var response = await server.Client.SendAsync(request);

        await response.AssertErrorAsync(400, "empty_array", "messages");
        Assert.Equal(Origin, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }
}
